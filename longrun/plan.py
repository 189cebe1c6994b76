"""From what the user typed to what gets submitted: a pure function, tested without Slurm.

sbatch's precedence is kept: command line, then SBATCH_* input variables, then #SBATCH lines.
One-time options (--dependency, --begin, --hold, --wait) apply to the first link only: on the
command line they are left out of the successors' options; in the script they are disabled in
the link's header (the line is kept, prefixed with '#', and its other options re-emitted) and
moved onto the first link's command line.
"""

from __future__ import annotations

import os
import re
import signal as signal_module
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from . import protocol
from .arrays import ArraySpec, parse_array
from .batch_script import (
    DIRECTIVE,
    UserScript,
    bash_comment,
    header_end,
    parse_directives,
    quote_directive_argument,
)
from .environment import ExportMode, export_mode
from .errors import UsageError
from .learning import (
    FAST_FAIL_SECONDS,
    MAX_HANDOVERS,
    LearningPlan,
    learning_plan,
)
from .mail import MailPlan, mail_plan
from .notify import NOTIFY_TIMEOUT_SECONDS, NotifyPlan, notify_plan
from .sbatch_options import (
    COMPONENT,
    ONE_TIME_OPTIONS,
    SEPARATOR,
    Option,
    ParsedArgs,
    components,
    first_component,
    last_value,
)
from .script_checks import self_continuing
from .wrapper_options import WrapperOptions

CONTINUE_EXIT_CODE = protocol.CONTINUE_EXIT_CODE
DEFAULT_CHECK = "USR1"
DEFAULT_CHECK_SECONDS = 120
SIGNAL_SLACK_SECONDS = 60  # Slurm may send --signal up to this much earlier than asked
BODY_DELIMITER = "LONGRUN_SCRIPT_END"
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
# The body is written into its link's folder under the script's name, unless the protocol
# uses that name there (a script named `claim` would take the successor's claim).
LINK_FILES = frozenset(protocol.PATHS.values())

# sbatch's input environment variables for the options longrun must know (see sbatch(1)).
INPUT_VARIABLES = {
    "array": "SBATCH_ARRAY_INX",
    "clusters": "SBATCH_CLUSTERS",
    "error": "SBATCH_ERROR",
    "export": "SBATCH_EXPORT",
    "job-name": "SBATCH_JOB_NAME",
    "no-requeue": "SBATCH_NO_REQUEUE",
    "open-mode": "SBATCH_OPEN_MODE",
    "output": "SBATCH_OUTPUT",
    "requeue": "SBATCH_REQUEUE",
    "signal": "SBATCH_SIGNAL",
    "wait": "SBATCH_WAIT",
}
# Never passed to any sbatch that longrun runs: SBATCH_WAIT would make sbatch wait for the job;
# SBATCH_ARRAY_INX would make every later link an array (the first link gets --array instead).
DROPPED_VARIABLES = ("SBATCH_WAIT", "SBATCH_ARRAY_INX")
# Slurm's output file of an array task when none is given.
ARRAY_DEFAULT_OUTPUT = "slurm-%A_%a.out"
# Options longrun handles itself rather than passing to sbatch.
OWN_OPTIONS = frozenset({"wrap", "parsable", "wait", "test-only"})
# Options that longrun gives each link itself: Slurm adds up every --mail-type it is given, so
# the user's cannot stay in the header or on the command line (see longrun.mail).
PER_CHAIN_OPTIONS = frozenset({"mail-type"})
# Options taken out of the script's header, the line kept disabled and marked.
MOVED_OPTIONS = ONE_TIME_OPTIONS | PER_CHAIN_OPTIONS


HETEROGENEOUS_LEARNING = (
    "{option} is off for a heterogeneous job: which component's nodes or memory it would "
    "change is not something longrun can tell (README: Heterogeneous jobs)"
)

THROTTLE_WARNING = (
    "--array throttle %{n}: Slurm starts at most {n} elements' first links at once, but an "
    "element's later links are plain jobs that Slurm does not count against it, so more than "
    "{n} elements may run at once once elements continue (see the README: Job arrays)"
)


@dataclass(frozen=True)
class SignalSpec:
    """An sbatch --signal value: [{R|B}:]SIG[@SECONDS]."""

    signal: str  # name without SIG, e.g. USR1
    seconds: int
    batch: bool


def parse_signal(value: str) -> SignalSpec | None:
    """Parse a --signal value as sbatch does; None where sbatch refuses it (sbatch says why).

    Like Slurm's get_signal_opts: optional R/B flags in any case (the colon is optional),
    a signal name with or without SIG in any case, or a number; `@` with nothing after it
    means 0 seconds; times above 65535 are refused.
    """
    rest, batch = value, False
    for flag in ("R", "B", "R"):
        if rest[:1].upper() == flag:
            batch = batch or flag == "B"
            rest = rest[1:]
    if rest.startswith(":"):
        rest = rest[1:]
    name, at, seconds_text = rest.partition("@")
    number = _signal_number(name)
    if number is None:
        return None
    if not at:
        seconds = 60
    elif seconds_text == "":
        seconds = 0
    elif seconds_text.isdigit() and int(seconds_text) <= 0xFFFF:
        seconds = int(seconds_text)
    else:
        return None
    return SignalSpec(signal_module.Signals(number).name[3:], seconds, batch)


def _signal_number(name: str) -> int | None:
    text = name.strip().upper()
    if text.isdigit():
        number = int(text)
    else:
        text = text[3:] if text.startswith("SIG") else text
        member = signal_module.Signals.__members__.get("SIG" + text)
        number = int(member) if member is not None else 0
    try:
        signal_module.Signals(number)
    except ValueError:
        return None
    return number if 1 <= number <= 0xFFFF else None


@dataclass(frozen=True)
class EffectiveOptions:
    """The options whose effective value longrun needs, after sbatch's precedence rules."""

    values: Mapping[str, str | None]
    given: frozenset[str]

    def __contains__(self, name: str) -> bool:
        return name in self.given

    def get(self, name: str) -> str | None:
        return self.values.get(name)


def effective_options(
    cli: Sequence[Option], directives: Sequence[Option], environ: Mapping[str, str]
) -> EffectiveOptions:
    """Command line over SBATCH_* variables over #SBATCH lines, option by option."""
    values: dict[str, str | None] = {}
    names = {o.name for o in directives} | {o.name for o in cli} | set(INPUT_VARIABLES)
    for name in names:
        from_cli = last_value(cli, name)
        variable = INPUT_VARIABLES.get(name)
        from_script = last_value(directives, name)
        if from_cli is not None:
            values[name] = from_cli.value
        elif variable and variable in environ:
            values[name] = environ[variable]
        elif from_script is not None:
            values[name] = from_script.value
    return EffectiveOptions(values, frozenset(values))


@dataclass(frozen=True)
class LinkPlan:
    """Everything the link script is rendered from, and the first sbatch command."""

    chain_id: str
    chain_dir: str
    state_dir: str
    submit_dir: str
    slurm_bin_dir: str
    header: tuple[str, ...]
    generated_directives: tuple[str, ...]
    body: str
    body_delimiter: str
    interpreter: str
    interpreter_arg: str | None
    script_name: str
    script_args: tuple[str, ...]
    # sbatch's options of later links and of the first link: those of a heterogeneous job's
    # first component (longrun adds its own there), then the other components from `:` on.
    successor_options: tuple[str, ...]
    successor_components: tuple[str, ...]
    first_options: tuple[str, ...]
    first_components: tuple[str, ...]
    max_restarts: int
    retry_failed: int
    continue_code: int
    check_signal: str
    check_seconds: int  # how long before the time limit Slurm sends it (--signal=...@N)
    # The pre-timeout signal as --signal names it (for the workload), whoever traps it.
    pretimeout_signal: str
    forward_signal: bool
    step_signal_window: int
    verbose: bool
    judge_seconds: int
    answer_seconds: int  # how long a link waits for Slurm's answer about its predecessor
    submit_retry_seconds: int
    refused_retry_seconds: int  # the first wait before a refused successor is tried again
    heartbeat_seconds: int  # how often a link beats while its script runs
    orphan_seconds: int  # how long a link waits for a lost predecessor's script to stop
    backoff_seconds: int
    node_wait_seconds: int
    clusters: str | None
    comment_prefix: str
    export: ExportMode
    array: ArraySpec | None
    # For an array: --output/--error as given (later links get them with %A and %a resolved).
    output_pattern: str
    error_pattern: str
    mail: MailPlan
    notify: NotifyPlan
    notify_seconds: int  # one notifier run, or one POST with its tries
    progress_file: str  # absolute; "" when the chain does not track progress
    learning: LearningPlan
    submit_from: str  # compute, or login: successors are left to a keeper on a login node
    job_name: str
    test_only: bool
    parsable: bool
    warnings: tuple[str, ...] = field(default=())
    # The cluster is in a Slurm federation, or whether it is could not be learned (submit asks).
    federated: bool = False

    @property
    def link_script(self) -> str:
        return f"{self.chain_dir}/{protocol.LINK_SCRIPT}"

    @property
    def query_args(self) -> tuple[str, ...]:
        """How the job side asks slurmctld about one job: -M CLUSTERS, or --local on a cluster
        in no federation, which spares the federation look-up (one RPC) of every question."""
        if self.clusters:
            return ("-M", self.clusters)
        return () if self.federated else ("--local",)

    def tag(self, link_number: int) -> str:
        """The --comment of a link: the user's comment, then the chain's tag for that link."""
        return f"{self.comment_prefix}{protocol.link_tag(self.chain_id, link_number)}"

    def first_command(self) -> list[str]:
        """The sbatch command of the first link."""
        return [
            "sbatch", "--parsable", *self.first_options, f"--comment={self.tag(1)}",
            *self.first_components, self.link_script, *protocol.link_arguments(0),
        ]  # fmt: skip


@dataclass(frozen=True)
class ChainLocation:
    chain_id: str
    chain_dir: str
    state_dir: str
    submit_dir: str
    slurm_bin_dir: str


def build_plan(
    wrapper: WrapperOptions,
    args: ParsedArgs,
    script: UserScript,
    script_args: Sequence[str],
    where: ChainLocation,
    environ: Mapping[str, str],
) -> LinkPlan:
    """The plan of a chain: header, generated directives, options of first and later links."""
    parsed_directives = parse_directives(script)
    directive_options = [o for _, parsed in parsed_directives for o in parsed.options]
    cli = [o for o in args.options if o.name not in {"wrap"}]
    # A heterogeneous job: the first component holds the batch script; its settings are the
    # job's (signal, output, time...). The other components' options go to sbatch unchanged.
    heterogeneous = any(o.name == COMPONENT for o in (*cli, *directive_options))
    eff = effective_options(first_component(cli), first_component(directive_options), environ)

    array = parse_array(eff.get("array") or "") if "array" in eff else None
    if any(o.name in ("help", "usage", "version") for o in cli):
        raise UsageError("sbatch's --help/--usage/--version are not for a chain: run sbatch itself")

    warnings = [f"{script.source}: {line}" for line in self_continuing(script.text)]
    header = _rewrite_header(script, parsed_directives)

    generated: list[str] = []
    job_name = eff.get("job-name") or script.default_job_name
    # Every link runs link.sh, so sbatch's default name must be given explicitly. It goes on the
    # command line, never into an #SBATCH line: a file name may hold a newline, which would end
    # the comment and turn the rest of the name into a command.
    implicit = [] if "job-name" in eff else [f"--job-name={job_name}"]

    spec = parse_signal(eff.get("signal") or "") if "signal" in eff else None
    if "signal" not in eff:
        generated.append(f"--signal=B:{DEFAULT_CHECK}@{DEFAULT_CHECK_SECONDS}")
        check, forward, window = DEFAULT_CHECK, False, 0
        check_seconds = DEFAULT_CHECK_SECONDS
    elif spec is None:
        warnings.append(
            f"longrun cannot read --signal={eff.get('signal')}; the link will not trap it"
        )
        check, forward, window, check_seconds = "", False, 0, 0
    elif spec.batch:
        check, forward, window, check_seconds = spec.signal, True, 0, spec.seconds
    else:
        check, forward, window = "", False, spec.seconds + SIGNAL_SLACK_SECONDS
        check_seconds = 0

    # Links append to one log (a link that Slurm requeues would otherwise truncate it too).
    if "open-mode" not in eff:
        generated.append("--open-mode=append")
    elif (eff.get("open-mode") or "").lower().startswith("t"):
        warnings.append(
            "--open-mode=truncate: every link truncates the output file, so it only keeps the "
            "last link's output; leave --open-mode out to have the links append"
        )

    if heterogeneous:
        # longrun's own directives would follow the user's last component in the header: on
        # the command line they go to the first one (or, without `:` there, to every one).
        implicit = [*generated, *implicit]
        generated = []
        warnings.extend(HETEROGENEOUS_LEARNING.format(option=o) for o in _learning_given(wrapper))
    groups = components(cli)
    successor = [
        *implicit,
        *(t for o in groups[0] if o.name not in MOVED_OPTIONS | OWN_OPTIONS for t in o.tokens),
    ]
    successor_components = [
        t for group in groups[1:] for o in [SEPARATOR, *group]
        if o.name not in MOVED_OPTIONS | OWN_OPTIONS for t in o.tokens
    ]  # fmt: skip
    first_only = OWN_OPTIONS | PER_CHAIN_OPTIONS | {"array"}
    first = [*implicit, *(t for o in groups[0] if o.name not in first_only for t in o.tokens)]
    first_components = [
        t for group in groups[1:] for o in [SEPARATOR, *group] if o.name not in first_only
        for t in o.tokens
    ]  # fmt: skip
    cli_names = {o.name for o in cli}
    for option in directive_options:
        if option.name in ONE_TIME_OPTIONS - first_only and option.name not in cli_names:
            first.append(option.as_long())
    if array is not None:
        # The effective value (command line, SBATCH_ARRAY_INX, #SBATCH), on the command line.
        first.append(f"--array={array.spec}")
        if array.throttle is not None:
            warnings.append(THROTTLE_WARNING.format(n=array.throttle))
    mail = mail_plan(eff.get("mail-type"))
    if mail.wanted:
        first.append(f"--mail-type={mail.first}")

    interpreter, interpreter_arg = script.interpreter
    progress_file = _progress_file(wrapper.progress_file, where.submit_dir)
    name = script.default_job_name if script.source not in ("-", "--wrap") else "script"
    return LinkPlan(
        chain_id=where.chain_id,
        chain_dir=where.chain_dir,
        state_dir=where.state_dir,
        submit_dir=where.submit_dir,
        slurm_bin_dir=where.slurm_bin_dir,
        header=tuple(header),
        generated_directives=tuple(generated),
        body=script.text[:-1] if script.text.endswith("\n") else script.text,
        body_delimiter=_delimiter(script.lines),
        interpreter=interpreter,
        interpreter_arg=interpreter_arg,
        script_name=name if SAFE_NAME.match(name) and name not in LINK_FILES else "script",
        script_args=tuple(script_args),
        successor_options=tuple(successor),
        successor_components=tuple(successor_components),
        first_options=tuple(first),
        first_components=tuple(first_components),
        max_restarts=wrapper.max_restarts,
        retry_failed=wrapper.retry_failed,
        continue_code=CONTINUE_EXIT_CODE,
        check_signal=check,
        check_seconds=check_seconds,
        pretimeout_signal=spec.signal if spec else ("" if "signal" in eff else DEFAULT_CHECK),
        forward_signal=forward,
        step_signal_window=window,
        verbose=wrapper.verbosity != "SILENT",
        judge_seconds=_int_setting(environ, "LONGRUN_JUDGE_SECONDS", 60),
        answer_seconds=_int_setting(environ, "LONGRUN_ANSWER_SECONDS", 300),
        submit_retry_seconds=_int_setting(environ, "LONGRUN_SUBMIT_RETRY_SECONDS", 300),
        refused_retry_seconds=_int_setting(environ, "LONGRUN_REFUSED_RETRY_SECONDS", 30),
        heartbeat_seconds=max(1, _int_setting(environ, "LONGRUN_HEARTBEAT_SECONDS", 10)),
        orphan_seconds=_int_setting(environ, "LONGRUN_ORPHAN_SECONDS", 120),
        backoff_seconds=_int_setting(environ, "LONGRUN_BACKOFF_SECONDS", 30),
        node_wait_seconds=_int_setting(environ, "LONGRUN_NODE_WAIT_SECONDS", 330),
        clusters=eff.get("clusters") or None,
        comment_prefix=f"{eff.get('comment')} " if eff.get("comment") else "",
        export=export_mode(eff.get("export"), "export-file" in eff),
        array=array,
        output_pattern=(eff.get("output") or ARRAY_DEFAULT_OUTPUT) if array else "",
        error_pattern=(eff.get("error") or "") if array else "",
        mail=mail,
        notify=notify_plan(
            wrapper.notify, wrapper.notify_url, wrapper.notify_on, where.submit_dir, environ
        ),
        notify_seconds=max(
            1, _int_setting(environ, "LONGRUN_NOTIFY_SECONDS", NOTIFY_TIMEOUT_SECONDS)
        ),
        progress_file=progress_file,
        learning=replace(
            learning_plan(wrapper.learning, eff.values, progress_file, where.submit_dir, environ),
            max_handovers=_int_setting(environ, "LONGRUN_MAX_HANDOVERS", MAX_HANDOVERS),
            fast_fail_seconds=_int_setting(environ, "LONGRUN_FAST_FAIL_SECONDS", FAST_FAIL_SECONDS),
            **(PLACEMENT_OFF if heterogeneous else {}),
        ),
        submit_from=wrapper.submit_from,
        job_name=job_name,
        test_only=any(o.name == "test-only" for o in (*cli, *directive_options)),
        parsable=any(o.name == "parsable" for o in (*cli, *directive_options)),
        warnings=tuple(warnings),
    )


def _rewrite_header(script: UserScript, parsed_directives: Sequence) -> list[str]:
    """The user's header (after the #! line), with the directives longrun moves disabled in
    place (one-time options, --mail-type)."""
    lines = script.lines
    end = header_end(lines)
    by_index = {line.index: parsed for line, parsed in parsed_directives}
    header: list[str] = []
    for index in range(1, end):
        line = lines[index]
        parsed: ParsedArgs | None = by_index.get(index)
        if parsed is None or not any(o.name in MOVED_OPTIONS for o in parsed.options):
            header.append(bash_comment(line))
            continue
        kept = [o for o in parsed.options if o.name not in MOVED_OPTIONS]
        one_time = " ".join(o.as_long() for o in parsed.options if o.name in ONE_TIME_OPTIONS)
        per_chain = " ".join(o.as_long() for o in parsed.options if o.name in PER_CHAIN_OPTIONS)
        header.append("#" + line)
        if one_time:
            header.append(
                f"# longrun: {one_time} applies to the first link only (on its command line)"
            )
        if per_chain:
            header.append(
                f"# longrun: {per_chain} is given by longrun so that mail follows the chain"
            )
        if kept:
            rest = " ".join(quote_directive_argument(t) for o in kept for t in o.tokens)
            header.append(f"{DIRECTIVE} {rest}")
    return header


def _delimiter(lines: Sequence[str]) -> str:
    """A here-document delimiter that no line of the script equals."""
    taken = set(lines)
    candidate, n = BODY_DELIMITER, 0
    while candidate in taken:
        n += 1
        candidate = f"{BODY_DELIMITER}_{n}"
    return candidate


# A heterogeneous job: no node avoidance, node check or memory growth (see
# HETEROGENEOUS_LEARNING); progress and the time budget hold for the whole job.
PLACEMENT_OFF: dict[str, Any] = {
    "avoid_seconds": 0, "node_check": (), "grow_percent": 0, "grow_max_mb": 0,
}  # fmt: skip


def _learning_given(wrapper: WrapperOptions) -> list[str]:
    """The placement options the user gave that a heterogeneous job cannot have."""
    given = wrapper.learning
    return [
        name
        for name, value in (
            ("--node-check", given.node_check),
            ("--grow-mem-on-oom", given.grow_mem_on_oom),
        )
        if value
    ]


def _progress_file(path: str | None, submit_dir: str) -> str:
    if path is None:
        return ""
    if not path.strip() or "\n" in path:
        raise UsageError(f"--progress-file {path!r} is not a file name")
    return os.path.normpath(os.path.join(submit_dir, os.path.expanduser(path)))


def _int_setting(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise UsageError(f"{name}={raw!r} is not a whole number (0 or more)")
    return int(raw)
