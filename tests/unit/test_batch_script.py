"""Reading a batch script as sbatch does: checks, the directive block, directive splitting."""

from __future__ import annotations

from pathlib import Path

import pytest

from longrun.batch_script import (
    UserScript,
    directive_lines,
    load_script,
    quote_directive_argument,
    split_directive,
    wrap_script,
)
from longrun.errors import UsageError


def script(text: str) -> UserScript:
    return UserScript(text, "job.sh", "job.sh")


def test_directives_stop_at_the_first_command() -> None:
    text = (
        "#!/bin/bash\n"
        "#SBATCH -J first\n"
        "\n"
        "# a comment\n"
        "   # an indented comment\n"
        "#SBATCH --time=5\n"
        "echo start\n"
        "#SBATCH --partition=ignored\n"
    )
    lines = directive_lines(script(text))
    assert [line.arguments for line in lines] == [("-J", "first"), ("--time=5",)]


def test_directive_must_start_in_column_zero() -> None:
    lines = directive_lines(script("#!/bin/bash\n  #SBATCH -J no\n#SBATCH -J yes\n"))
    assert [line.arguments for line in lines] == [("-J", "yes")]


@pytest.mark.parametrize(
    ("text", "arguments"),
    [
        (' -J "two words" --time=5', ["-J", "two words", "--time=5"]),
        (" -J 'single quoted'", ["-J", "single quoted"]),
        (' -J a\\"b', ["-J", 'a"b']),
        (" -J x # trailing comment", ["-J", "x"]),
        (' -J "has # inside"', ["-J", "has # inside"]),
        (" --output=out.%j", ["--output=out.%j"]),
        ("", []),
        ('  "" -J x', []),  # like sbatch: an empty argument ends the line
    ],
)
def test_split_directive_like_sbatch(text: str, arguments: list[str]) -> None:
    assert split_directive(text, 1, "job.sh") == arguments


def test_unmatched_quote_is_an_error() -> None:
    with pytest.raises(UsageError, match="unmatched"):
        split_directive(' -J "open', 3, "job.sh")


@pytest.mark.parametrize(
    "value", ["plain", "two words", 'q"uote', "back\\slash", "hash#tag", "it's", "$(x) `y`"]
)
def test_quoted_directive_arguments_read_back_unchanged(value: str) -> None:
    assert split_directive(" " + quote_directive_argument(value), 1, "x") == [value]


def test_hetjob_lines_separate_components_as_sbatch_reads_them() -> None:
    text = (
        "#!/bin/bash\n#SBATCH -n1\n#SBATCH hetjob\n#SBATCH -n2\n#SBATCH   PackJob -J ignored\n"
        "#SBATCH -n3\n#SBATCH hetjobs\n"
    )
    found = [line.arguments for line in directive_lines(script(text))]
    # `hetjob` or the older `packjob`, any case; the rest of that line is ignored by sbatch.
    assert found == [("-n1",), (":",), ("-n2",), (":",), ("-n3",), ("hetjobs",)]


def test_wrap_script_is_what_sbatch_writes() -> None:
    wrapped = wrap_script('echo "hi there"; ls')
    assert wrapped.text == (
        '#!/bin/sh\n# This script was created by sbatch --wrap.\n\necho "hi there"; ls\n'
    )
    assert wrapped.default_job_name == "wrap"


def test_interpreter_is_split_like_the_kernel_does() -> None:
    assert script("#!/bin/bash\n").interpreter == ("/bin/bash", None)
    assert script("#!/usr/bin/env python3 -u\n").interpreter == ("/usr/bin/env", "python3 -u")
    assert script("#! /bin/sh -e\n").interpreter == ("/bin/sh", "-e")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"   \n\n", "is empty"),
        (b"echo no shebang\n", "does not start with #!"),
        (b"#!/bin/bash\r\necho dos\r\n", "DOS line breaks"),
        (b"#!/bin/bash\n\x00\x01binary", "NUL byte"),
    ],
)
def test_bad_scripts_are_refused_with_the_path(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad job.sh"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=message) as caught:
        load_script(str(path))
    assert str(path) in str(caught.value)


def test_missing_script_and_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        load_script(str(tmp_path / "nope.sh"))
    with pytest.raises(UsageError, match="is a directory"):
        load_script(str(tmp_path))


def test_unreadable_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.sh"
    path.write_text("#!/bin/bash\n")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    # Root can read a mode-000 file, so the refusal is provoked directly.
    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(UsageError, match="not readable: Permission denied"):
        load_script(str(path))


def test_script_from_stdin_gets_sbatch_default_name() -> None:
    loaded = load_script(None, "#!/bin/bash\necho hi\n")
    assert loaded.default_job_name == "sbatch"
    assert loaded.source == "-"
