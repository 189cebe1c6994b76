"""sbatch's command-line grammar: which options take values, and how argv and #SBATCH lines split.

The long options are those of Slurm 22.05 and 24.11 together, read off each one's sbatch by
probing its getopt (`tests/unit/data/sbatch_options.sh`, whose output for each version lies
beside it and is checked against this table); the letters are the same in both. Parsing
follows GNU getopt_long as sbatch uses it: options stop at the first operand (the script) or at
`--`; long names may be abbreviated to any unambiguous prefix (unambiguous in both versions);
optional values only attach with `=` (long) or directly (short).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import UsageError

REQUIRED = "required"
NONE = "none"
OPTIONAL = "optional"

LONG_OPTIONS: dict[str, str] = {
    "account": REQUIRED, "acctg-freq": REQUIRED, "array": REQUIRED, "batch": REQUIRED,
    "bb": REQUIRED, "bbf": REQUIRED, "begin": REQUIRED, "chdir": REQUIRED,
    "cluster-constraint": REQUIRED, "clusters": REQUIRED, "comment": REQUIRED,
    "constraint": REQUIRED, "container": REQUIRED, "contiguous": NONE, "core-spec": REQUIRED,
    "cores-per-socket": REQUIRED, "cpu-freq": REQUIRED, "cpus-per-gpu": REQUIRED,
    "cpus-per-task": REQUIRED, "deadline": REQUIRED, "delay-boot": REQUIRED,
    "dependency": REQUIRED, "distribution": REQUIRED, "error": REQUIRED, "exclude": REQUIRED,
    "exclusive": OPTIONAL, "export": REQUIRED, "export-file": REQUIRED,
    "extra-node-info": REQUIRED, "get-user-env": OPTIONAL, "gid": REQUIRED, "gpu-bind": REQUIRED,
    "gpu-freq": REQUIRED, "gpus": REQUIRED, "gpus-per-node": REQUIRED,
    "gpus-per-socket": REQUIRED, "gpus-per-task": REQUIRED, "gres": REQUIRED,
    "gres-flags": REQUIRED, "help": NONE, "hint": REQUIRED, "hold": NONE, "ignore-pbs": NONE,
    "input": REQUIRED, "job-name": REQUIRED, "kill-on-invalid-dep": REQUIRED,
    "licenses": REQUIRED, "mail-type": REQUIRED, "mail-user": REQUIRED, "mcs-label": REQUIRED,
    "mem": REQUIRED, "mem-bind": REQUIRED, "mem-per-cpu": REQUIRED, "mem-per-gpu": REQUIRED,
    "mincpus": REQUIRED, "network": REQUIRED, "nice": OPTIONAL, "no-kill": OPTIONAL,
    "no-requeue": NONE, "nodefile": REQUIRED, "nodelist": REQUIRED, "nodes": REQUIRED,
    "ntasks": REQUIRED, "ntasks-per-core": REQUIRED, "ntasks-per-gpu": REQUIRED,
    "ntasks-per-node": REQUIRED, "ntasks-per-socket": REQUIRED, "open-mode": REQUIRED,
    "output": REQUIRED, "overcommit": NONE, "oversubscribe": NONE, "parsable": NONE,
    "partition": REQUIRED, "power": REQUIRED, "prefer": REQUIRED, "priority": REQUIRED,
    "profile": REQUIRED, "propagate": OPTIONAL, "qos": REQUIRED, "quiet": NONE, "reboot": NONE,
    "requeue": NONE, "reservation": REQUIRED, "signal": REQUIRED, "sockets-per-node": REQUIRED,
    "spread-job": NONE, "switches": REQUIRED, "test-only": NONE, "thread-spec": REQUIRED,
    "threads-per-core": REQUIRED, "time": REQUIRED, "time-min": REQUIRED, "tmp": REQUIRED,
    "uid": REQUIRED, "usage": NONE, "use-min-nodes": NONE, "verbose": NONE, "version": NONE,
    "wait": NONE, "wait-all-nodes": REQUIRED, "wckey": REQUIRED, "wrap": REQUIRED,
    # Known to 22.05's getopt without being documented there.
    "context": REQUIRED, "ntasks-per-tres": REQUIRED,
    # New in 24.11 (by 22.05's sbatch refused with its own words).
    "autocomplete": REQUIRED, "container-id": REQUIRED, "extra": REQUIRED,
    "oom-kill-step": OPTIONAL, "resv-ports": OPTIONAL, "segment": REQUIRED, "stepmgr": NONE,
    "tres-bind": REQUIRED, "tres-per-task": REQUIRED,
}  # fmt: skip

SHORT_OPTIONS: dict[str, str] = {
    "a": "array", "b": "begin", "c": "cpus-per-task", "d": "dependency", "e": "error",
    "h": "help", "i": "input", "k": "no-kill", "m": "distribution", "n": "ntasks",
    "o": "output", "p": "partition", "q": "qos", "s": "oversubscribe", "t": "time",
    "v": "verbose", "w": "nodelist", "x": "exclude", "A": "account", "B": "extra-node-info",
    "C": "constraint", "D": "chdir", "F": "nodefile", "G": "gpus", "H": "hold",
    "J": "job-name", "L": "licenses", "M": "clusters", "N": "nodes", "O": "overcommit",
    "Q": "quiet", "S": "core-spec", "V": "version", "W": "wait",
}  # fmt: skip

# Options that concern one submission only: a successor link must not repeat them.
# Options for the first link only: later links are plain jobs that follow it (an array's later
# links are one plain job per element).
ONE_TIME_OPTIONS = frozenset(
    {"dependency", "begin", "hold", "wait", "parsable", "test-only", "array"}
)


@dataclass(frozen=True)
class Option:
    """One sbatch option as the user wrote it: canonical long name, value, original tokens."""

    name: str
    value: str | None
    tokens: tuple[str, ...]

    def as_long(self) -> str:
        """A single token in `--name=value` form (or `--name` for a flag)."""
        return f"--{self.name}" if self.value is None else f"--{self.name}={self.value}"


# Between the components of a heterogeneous job: `:` on the command line, `#SBATCH hetjob`
# (or `packjob`) in the script. Kept among the options as an Option of this name.
COMPONENT = ":"
SEPARATOR = Option(COMPONENT, None, (COMPONENT,))


def components(options: Sequence[Option]) -> list[list[Option]]:
    """The options of each component of a heterogeneous job, in order (one list for others)."""
    groups: list[list[Option]] = [[]]
    for option in options:
        if option.name == COMPONENT:
            groups.append([])
        else:
            groups[-1].append(option)
    return groups


def first_component(options: Sequence[Option]) -> list[Option]:
    """The options up to the first component separator: those of the job's first component,
    which holds the batch script (and whose settings longrun reads)."""
    return components(options)[0]


@dataclass(frozen=True)
class ParsedArgs:
    """sbatch's options, then the operands: the script (if any) and its arguments."""

    options: tuple[Option, ...]
    operands: tuple[str, ...]


# Long names sbatch's getopt knows besides those above, and the option each one means
# (checked: a job submitted with --tasks-per-node=3 shows NtasksPerN 3).
ALIASES: dict[str, str] = {"cluster": "clusters", "tasks-per-node": "ntasks-per-node"}


def resolve_long(name: str) -> str | None:
    """The long option `name` means, as getopt_long resolves it (exact, else unique prefix)."""
    if name in LONG_OPTIONS:
        return name
    if name in ALIASES:
        return ALIASES[name]
    matches = [known for known in LONG_OPTIONS if known.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise UsageError(
            f"sbatch option '--{name}' is ambiguous; possibilities: "
            + " ".join(f"'--{m}'" for m in sorted(matches)),
            "Write the option's full name.",
        )
    return None


def parse_args(argv: Sequence[str], where: str = "the command line") -> ParsedArgs:
    """Split sbatch arguments into options and operands, exactly as sbatch's getopt would.

    Unknown long options written as `--name=value` are kept (a newer sbatch may know them);
    sbatch itself then judges them. Unknown bare options are a usage error, since their value
    (if any) cannot be told apart from the script.
    """
    options: list[Option] = []
    i = 0
    args = list(argv)
    while i < len(args):
        token = args[i]
        if token == "--":
            return ParsedArgs(tuple(options), tuple(args[i + 1 :]))
        if token == COMPONENT:
            options.append(SEPARATOR)
            i += 1
            continue
        if token.startswith("--") and len(token) > 2:
            body = token[2:]
            name_part, has_eq, inline = body.partition("=")
            name = resolve_long(name_part)
            if name is None:
                if has_eq:
                    options.append(Option(name_part, inline, (token,)))
                    i += 1
                    continue
                raise UsageError(
                    f"unrecognized sbatch option '{token}' in {where}",
                    "Check the spelling (`sbatch --help`); if your sbatch is newer and the "
                    f"option takes a value, write it as {token}=VALUE.",
                )
            kind = LONG_OPTIONS[name]
            if kind == NONE:
                if has_eq:
                    raise UsageError(f"sbatch option '--{name}' doesn't allow an argument")
                options.append(Option(name, None, (token,)))
                i += 1
            elif kind == OPTIONAL:
                options.append(Option(name, inline if has_eq else None, (token,)))
                i += 1
            elif has_eq:
                options.append(Option(name, inline, (token,)))
                i += 1
            else:
                if i + 1 >= len(args):
                    raise UsageError(f"sbatch option '--{name}' requires an argument")
                options.append(Option(name, args[i + 1], (token, args[i + 1])))
                i += 2
            continue
        if token.startswith("-") and len(token) > 1:
            consumed = _parse_short_cluster(args, i, options, where)
            i += consumed
            continue
        return ParsedArgs(tuple(options), tuple(args[i:]))
    return ParsedArgs(tuple(options), ())


def _parse_short_cluster(args: list[str], i: int, options: list[Option], where: str) -> int:
    """Parse `-abc`, `-Jname` or `-J name` at args[i]; return how many tokens it used."""
    token = args[i]
    pos = 1
    while pos < len(token):
        letter = token[pos]
        name = SHORT_OPTIONS.get(letter)
        if name is None:
            raise UsageError(
                f"invalid sbatch option -- '{letter}' in {where}",
                "Check the spelling (`sbatch --help`).",
            )
        kind = LONG_OPTIONS[name]
        rest = token[pos + 1 :]
        if kind == NONE:
            options.append(Option(name, None, (token,)))
            pos += 1
            continue
        if rest:
            options.append(Option(name, rest, (token,)))
            return 1
        if kind == OPTIONAL:
            options.append(Option(name, None, (token,)))
            return 1
        if i + 1 >= len(args):
            raise UsageError(f"sbatch option requires an argument -- '{letter}'")
        options.append(Option(name, args[i + 1], (token, args[i + 1])))
        return 2
    return 1


def last_value(options: Iterable[Option], name: str) -> Option | None:
    """The option that wins for `name`: the last one given."""
    found = None
    for option in options:
        if option.name == name:
            found = option
    return found


def tokens_of(options: Iterable[Option]) -> list[str]:
    """The original argv tokens of these options, in order."""
    return [token for option in options for token in option.tokens]
