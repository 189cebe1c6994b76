"""The user's batch script: loading and checking it as sbatch would, and its #SBATCH header.

sbatch reads directives from lines that start with `#SBATCH` in column 0, up to the first line
that holds a command (a non-blank character before any `#`). A directive line splits into
arguments like a shell word list: quotes group, a backslash escapes the next character, and an
unquoted `#` starts a comment. This module reproduces that reading; it runs nothing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .sbatch_options import COMPONENT, ParsedArgs, parse_args

DIRECTIVE = "#SBATCH"
WRAP_PREFIX = "#!/bin/sh\n# This script was created by sbatch --wrap.\n\n"


@dataclass(frozen=True)
class UserScript:
    """The script as sbatch would get it, and the name sbatch would give the job."""

    text: str
    default_job_name: str
    source: str  # the path the user gave, "-" for standard input, "--wrap" for --wrap

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    @property
    def interpreter(self) -> tuple[str, str | None]:
        """Interpreter and optional argument from the `#!` line, split as the kernel does."""
        first = self.lines[0][2:].strip()
        program, _, argument = first.partition(" ")
        argument = argument.strip()
        return program, (argument or None)


# `#SBATCH hetjob` (or the older `packjob`), as sbatch reads it: blanks, the word in any case,
# then the end of the line or a blank.
HETJOB_LINE = re.compile(r"^\s*(?:hetjob|packjob)(?:\s|$)", re.IGNORECASE)


@dataclass(frozen=True)
class DirectiveLine:
    """One `#SBATCH` line of the header: its index in the script and its arguments."""

    index: int
    arguments: tuple[str, ...]


def wrap_script(command: str) -> UserScript:
    """The script sbatch makes for `--wrap=CMD` (byte for byte what Slurm 22.05 writes)."""
    return UserScript(WRAP_PREFIX + command + "\n", "wrap", "--wrap")


def load_script(path: str | None, stdin_text: str | None = None) -> UserScript:
    """Read the script from `path`, or from standard input when path is None, and check it."""
    if path is None:
        if stdin_text is None:
            raise UsageError("no script given and nothing on standard input")
        text, source, name = stdin_text, "-", "sbatch"
    else:
        text = _read_file(path)
        source, name = path, os.path.basename(path.rstrip("/")) or path
    check_script_text(text, source)
    return UserScript(text, name, source)


def _read_file(path: str) -> str:
    where = Path(path)
    if not where.exists():
        raise UsageError(
            f"script {path!r} does not exist",
            "Give the path of your batch script (relative to the current directory).",
        )
    if where.is_dir():
        raise UsageError(f"script {path!r} is a directory, not a batch script")
    try:
        data = where.read_bytes()
    except PermissionError as exc:
        raise UsageError(
            f"script {path!r} is not readable: {exc.strerror}",
            f"Check its permissions (`ls -l {path}`).",
        ) from exc
    except OSError as exc:
        raise UsageError(f"cannot read script {path!r}: {exc.strerror}") from exc
    if b"\0" in data:
        raise UsageError(
            f"script {path!r} contains a NUL byte: it looks like a binary file, not a batch "
            "script (Slurm refuses scripts with NUL characters)",
            "Submit a text script that starts with #! and runs your program.",
        )
    # Bytes that are not UTF-8 survive as surrogates and are written back unchanged.
    return data.decode("utf-8", errors="surrogateescape")


def check_script_text(text: str, source: str) -> None:
    """Refuse what sbatch refuses, with what to do about it."""
    label = "the script on standard input" if source == "-" else f"script {source!r}"
    if not text.strip():
        raise UsageError(f"{label} is empty", "sbatch refuses an empty batch script.")
    if "\0" in text:
        raise UsageError(f"{label} contains a NUL byte, which Slurm refuses")
    if not text.startswith("#!"):
        raise UsageError(
            f"{label} does not start with #! (sbatch refuses it too)",
            "Add an interpreter line at the top, for instance #!/bin/bash",
        )
    if "\r\n" in text:
        raise UsageError(
            f"{label} has DOS line breaks (\\r\\n), which sbatch refuses",
            f"Convert it with `dos2unix {source}` or `sed -i 's/\\r$//' {source}`.",
        )


# What sbatch skips before a line's first character (C's isspace): not Python's str.isspace,
# which also takes \x1c-\x1f and Unicode spaces that sbatch reads as the start of a command.
C_SPACES = " \t\n\v\f\r"
# What bash skips: a header line that starts otherwise (\f# $(cmd) is a comment to sbatch) is
# not a comment in the bash link script, so it is copied there behind a '#'.
BASH_BLANKS = " \t"


def bash_comment(line: str) -> str:
    """A header line as the link script holds it: a blank or comment line in bash too."""
    stripped = line.lstrip(BASH_BLANKS)
    return line if not stripped or stripped.startswith("#") else "#" + line


def header_end(lines: list[str]) -> int:
    """Index of the first line sbatch treats as a command (len(lines) if there is none)."""
    for index, line in enumerate(lines):
        if line.startswith(DIRECTIVE):
            continue
        stripped = line.lstrip(C_SPACES)
        if stripped and not stripped.startswith("#"):
            return index
    return len(lines)


def directive_lines(script: UserScript) -> list[DirectiveLine]:
    """The `#SBATCH` lines sbatch reads, each split into its arguments."""
    lines = script.lines
    found: list[DirectiveLine] = []
    for index in range(header_end(lines)):
        line = lines[index]
        if not line.startswith(DIRECTIVE):
            continue
        if HETJOB_LINE.match(line[len(DIRECTIVE) :]):
            # A new component of a heterogeneous job; sbatch ignores the rest of the line.
            found.append(DirectiveLine(index, (COMPONENT,)))
            continue
        arguments = split_directive(line[len(DIRECTIVE) :], index + 1, script.source)
        found.append(DirectiveLine(index, tuple(arguments)))
    return found


def split_directive(text: str, lineno: int, source: str) -> list[str]:
    """Split the rest of an #SBATCH line into arguments, as sbatch's own reader does."""
    arguments: list[str] = []
    i = 0
    n = len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return arguments
        if text[i] == ":":
            raise UsageError(f"{source}: line {lineno}: unexpected `:` in #SBATCH line")
        current: list[str] = []
        quote: str | None = None
        escaped = False
        while i < n and (quote is not None or not text[i].isspace()):
            char = text[i]
            i += 1
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
                continue
            elif quote is not None:
                if char == quote:
                    quote = None
                    continue
            elif char in "\"'":
                quote = char
                continue
            elif char == "#":
                i = n
                break
            current.append(char)
        if quote is not None:
            raise UsageError(f"{source}: line {lineno}: unmatched {quote} in #SBATCH line")
        # Like sbatch, an argument that comes out empty ends the line.
        if not current:
            return arguments
        arguments.append("".join(current))


def quote_directive_argument(argument: str) -> str:
    """Write one argument so that sbatch's directive reader gives it back unchanged."""
    if argument and not any(c.isspace() or c in "\"'\\#" for c in argument):
        return argument
    escaped = argument.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def parse_directives(script: UserScript) -> list[tuple[DirectiveLine, ParsedArgs]]:
    """Each directive line with its parsed options (sbatch ignores operands there)."""
    parsed = []
    for line in directive_lines(script):
        where = f"{script.source} line {line.index + 1}"
        parsed.append((line, parse_args(line.arguments, where=where)))
    return parsed
