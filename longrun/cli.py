"""Command line: click only. Parse, call one function, turn LongrunError into a message."""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from click.shell_completion import CompletionItem

from . import __version__, chain_actions, log, protocol, slurm, states
from .array_view import ArrayView
from .arrays import element_key, split_element
from .chain_store import ChainFolder, StateDir, default_root, reading
from .command_line import split_wrapper_args
from .errors import LongrunError, SlurmCommandError, StateError, UsageError
from .files import read_regular
from .learning import DEFAULT_AVOID
from .notify import NOTIFY_ON
from .report import array_status_text, list_text, status_text
from .wrapper_options import DEFAULTS, WrapperOptions

F = TypeVar("F", bound=Callable[..., Any])
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
VERBOSITY = {"DEFAULT": "INFO", "VERBOSE": "DEBUG", "SILENT": "ERROR"}


def setup_logging(verbosity: str) -> None:
    log.configure(VERBOSITY.get(verbosity.upper(), "INFO"))


def version_option(program: str) -> Callable[[F], F]:
    """--version: longrun's, and Slurm's as its sbatch reports it."""

    def show(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value and not ctx.resilient_parsing:
            click.echo(f"{program}, version {__version__} (Slurm {slurm.version()})")
            ctx.exit()

    return click.option(
        "--version",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=show,
        help="Show longrun's version and Slurm's, and exit.",
    )


def reports_errors(function: F) -> F:
    """Print an expected failure as a message (no traceback) and exit with its status."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except SlurmCommandError as exc:
            refused = exc.command[:1] == ["sbatch"] and exc.returncode not in (None, 127)
            if refused and exc.stderr:
                # sbatch's own words, as plain sbatch would print them.
                click.echo(exc.stderr, err=True)
                click.echo("longrun: sbatch refused the job; nothing was submitted.", err=True)
            else:
                click.echo(f"longrun: error: {exc.message}", err=True)
                if exc.hint:
                    click.echo(f"longrun: {exc.hint}", err=True)
            sys.exit(exc.exit_code)
        except LongrunError as exc:
            click.echo(f"longrun: error: {exc.message}", err=True)
            if exc.hint:
                click.echo(f"longrun: {exc.hint}", err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


class WrapperCommand(click.Command):
    """A command whose own options come first; everything from the first other token is sbatch's.

    click alone would keep looking for its options after an unknown one (`-J x --max-restarts 3`),
    which sbatch_longrun must not do.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        takes_value: dict[str, bool] = {}
        for param in self.get_params(ctx):
            if isinstance(param, click.Option):
                for name in (*param.opts, *param.secondary_opts):
                    # An option whose value is optional takes it after "=" only.
                    optional = getattr(param, "_flag_needs_value", False)
                    takes_value[name] = not (param.is_flag or param.count or optional)
        wrapper, rest = split_wrapper_args(args, takes_value)
        return super().parse_args(ctx, [*wrapper, "--", *rest])


SUBMIT_HELP = """Submit SCRIPT as a chain of Slurm jobs that continues itself.

\b
  sbatch_longrun [WRAPPER OPTIONS] [SBATCH OPTIONS] SCRIPT [SCRIPT ARGS]

Wrapper options come first; from the first other token on, everything is passed to sbatch as
with plain sbatch (no SCRIPT: read from standard input; --wrap=CMD works too). Each link keeps
a successor queued; {continuing} continue the chain;
exit 0 ends it {completed}, another exit code {failed}, scancel {cancelled}. Exit {code} from the
script asks for a new link at once.
""".format(
    continuing=", ".join(states.CONTINUE_STATES),
    completed=states.CHAIN_COMPLETED,
    failed=states.CHAIN_FAILED,
    cancelled=states.CHAIN_CANCELLED,
    code=protocol.CONTINUE_EXIT_CODE,
)


def count_option(name: str, default: int, help: str) -> Callable[[F], F]:
    return click.option(
        name, type=click.IntRange(min=0), default=default, show_default=True, help=help
    )


def complete_chain(
    ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Chain ids (newest first), then the job ids of their links, from the state directory."""
    try:
        state = state_of(ctx.params.get("state_dir"))
        chains = [folder.chain_id for folder in state.list()]
        jobs = sorted(
            (path.name for path in state.jobs.iterdir()) if state.jobs.is_dir() else (),
            key=lambda job: [int(part) for part in job.split("_") if part.isdigit()],
            reverse=True,
        )
    except (OSError, LongrunError):
        return []
    return [
        CompletionItem(value, help=kind)
        for values, kind in ((chains, "chain"), (jobs, "job"))
        for value in values
        if value.startswith(incomplete)
    ]


def complete_sbatch_args(
    _ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """sbatch's options are sbatch's to complete; a script is a file."""
    return [] if incomplete.startswith("-") else [CompletionItem(incomplete, type="file")]


def submit_options(function: F) -> F:
    options = [
        click.option(
            "--use-verbosity",
            type=click.Choice(["DEFAULT", "VERBOSE", "SILENT"], case_sensitive=False),
            default=DEFAULTS.verbosity,
            show_default=True,
            help="How much longrun says (here and in each link's log).",
        ),
        click.option(
            "--detached/--no-detached",
            default=False,
            help="Watch the chain from a background process that logs to the chain folder.",
        ),
        count_option(
            "--max-restarts", DEFAULTS.max_restarts, "At most N continuations, i.e. N+1 links."
        ),
        count_option(
            "--retry-failed",
            DEFAULTS.retry_failed,
            "How often a link whose script exits non-zero on its own is run again.",
        ),
        click.option(
            "--notify",
            metavar="CMD",
            default=None,
            help="Run CMD on a compute node when the chain ends or needs you, with LONGRUN_EVENT, "
            "LONGRUN_CHAIN_ID, LONGRUN_STATE, LONGRUN_REASON... in its environment.",
        ),
        click.option(
            "--notify-url",
            metavar="URL",
            default=None,
            help="POST those events as JSON to URL (curl, else Python's standard library).",
        ),
        click.option(
            "--notify-on",
            type=click.Choice(NOTIFY_ON),
            default=DEFAULTS.notify_on,
            show_default=True,
            help="end: the chain's end, a stall, a refused successor; all: also every link.",
        ),
        click.option(
            "--progress-file",
            metavar="PATH",
            default=None,
            help="A file your job rewrites when it makes progress (a checkpoint): longrun usage "
            "shows the work at risk at each interruption.",
        ),
        click.option(
            "--submit-from",
            type=click.Choice(protocol.SUBMIT_FROM),
            default=DEFAULTS.submit_from,
            show_default=True,
            help="login: links do not submit; a keeper on a login node queues each successor "
            "(the watcher, or `longrun keeper`). Chosen by itself when a link finds that its "
            "compute node may not submit.",
        ),
        click.option(
            "--avoid-failed-nodes",
            metavar="[=DURATION]",
            is_flag=False,
            flag_value=DEFAULT_AVOID,
            default=DEFAULT_AVOID,
            show_default=True,
            help="Keep later links off the nodes of a link that lost its node or failed within "
            "a minute of its start, for DURATION.",
        ),
        click.option(
            "--no-avoid-failed-nodes", is_flag=True, help="Never steer links off failed nodes."
        ),
        click.option(
            "--node-check",
            metavar="CMD",
            default=None,
            help="Run CMD on the node before your script (e.g. nvidia-smi); if it fails, the "
            "chain avoids the node and moves on without running the script there.",
        ),
        click.option(
            "--grow-mem-on-oom",
            metavar="FACTOR[:MAX]",
            default=None,
            help="After a link runs out of memory, the next link asks for FACTOR times the "
            "memory (--mem or --mem-per-cpu), up to MAX (e.g. 2:64G).",
        ),
        click.option(
            "--max-idle-links",
            type=click.IntRange(min=1),
            default=None,
            help="End the chain NO_PROGRESS after N links in a row left --progress-file "
            "unchanged (default 3 with --progress-file).",
        ),
        click.option(
            "--total-time",
            metavar="DURATION",
            default=None,
            help="A budget for the links' run times together (e.g. 3-00:00:00 or 72h): the last "
            "link's time limit is cut to what is left; the chain ends TIME_BUDGET.",
        ),
        click.option("--no-watch", is_flag=True, help="Submit and exit; nothing stays running."),
        click.option(
            "--dry-run", is_flag=True, help="Print the link script and sbatch command only."
        ),
        click.option(
            "--state-dir",
            type=click.Path(),
            default=None,
            help="Where chains live (default $LONGRUN_HOME, else ~/.longrun); must be visible "
            "from compute nodes.",
        ),
        click.argument(
            "sbatch_args", nargs=-1, type=click.UNPROCESSED, shell_complete=complete_sbatch_args
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@reports_errors
def run_submit(
    use_verbosity: str,
    detached: bool,
    max_restarts: int,
    retry_failed: int,
    notify: str | None,
    notify_url: str | None,
    notify_on: str,
    progress_file: str | None,
    submit_from: str,
    avoid_failed_nodes: str,
    no_avoid_failed_nodes: bool,
    node_check: str | None,
    grow_mem_on_oom: str | None,
    max_idle_links: int | None,
    total_time: str | None,
    no_watch: bool,
    dry_run: bool,
    state_dir: str | None,
    sbatch_args: tuple[str, ...],
) -> None:
    setup_logging(use_verbosity)
    # Imported here: reading a chain (status, list...) needs neither Jinja2 nor the planner.
    from .learning import LearningOptions
    from .submission import DryRun, Submitted, TestOnly, submit
    from .watcher import start_detached, watch_until_end

    wrapper = WrapperOptions(
        max_restarts=max_restarts,
        retry_failed=retry_failed,
        verbosity=use_verbosity.upper(),
        detached=detached,
        no_watch=no_watch,
        dry_run=dry_run,
        state_dir=state_dir,
        notify=notify,
        notify_url=notify_url,
        notify_on=notify_on,
        progress_file=progress_file,
        submit_from=submit_from,
        learning=LearningOptions(
            avoid_failed_nodes=None if no_avoid_failed_nodes else avoid_failed_nodes,
            node_check=node_check,
            grow_mem_on_oom=grow_mem_on_oom,
            max_idle_links=max_idle_links,
            total_time=total_time,
        ),
    )
    if not sbatch_args and sys.stdin.isatty():
        raise UsageError(
            "no batch script given",
            "Usage: sbatch_longrun [WRAPPER OPTIONS] [SBATCH OPTIONS] SCRIPT [ARGS]; see --help.",
        )
    outcome = submit(wrapper, list(sbatch_args))
    if isinstance(outcome, TestOnly):
        click.echo(outcome.stdout, nl=False)
        click.echo(outcome.stderr, nl=False, err=True)
        sys.exit(outcome.returncode)
    if isinstance(outcome, DryRun):
        click.echo(outcome.script, nl=False)
        # Every line a comment: a value with a newline must not end the comment.
        command = shlex.join(outcome.command).replace("\n", "\n# ")
        click.echo(f"# sbatch command of the first link:\n# {command}")
        return
    assert isinstance(outcome, Submitted)
    if outcome.plan.parsable:
        click.echo(outcome.job_id)
    else:
        click.echo(f"Submitted batch job {outcome.job_id}")
        log.info(
            "chain {} (up to {} links); `longrun status {}` shows it",
            outcome.chain_id,
            max_restarts + 1,
            outcome.job_id,
        )
    state = StateDir(outcome.folder.path.parent.parent)
    verbose = use_verbosity.upper() == "VERBOSE"
    if detached:
        pid, log_path = start_detached(outcome.folder, state, verbose)
        click.echo(f"Monitor running in background PID: {pid}", err=outcome.plan.parsable)
        click.echo(f"Monitor log: {log_path}", err=outcome.plan.parsable)
    elif not no_watch:
        sys.exit(watch_until_end(outcome.folder, state, verbose, replay=True))


@click.group(context_settings=CONTEXT)
@version_option("longrun")
def main() -> None:
    """Run Slurm work that outlasts one job's walltime as a self-continuing chain of jobs."""


@main.command("submit", cls=WrapperCommand, context_settings=CONTEXT, help=SUBMIT_HELP)
@submit_options
def submit_command(**kwargs: Any) -> None:
    run_submit(**kwargs)


@click.command("sbatch_longrun", cls=WrapperCommand, context_settings=CONTEXT, help=SUBMIT_HELP)
@version_option("sbatch_longrun")
@submit_options
def sbatch_longrun_main(**kwargs: Any) -> None:
    run_submit(**kwargs)


def state_dir_option(function: F) -> F:
    return click.option(
        "--state-dir",
        type=click.Path(),
        default=None,
        help="Where chains live (default $LONGRUN_HOME, else ~/.longrun).",
    )(function)


def chain_argument(required: bool) -> Callable[[F], F]:
    return click.argument(
        "chain",
        required=required,
        metavar="CHAIN" if required else "[CHAIN]",
        shell_complete=complete_chain,
    )


def state_of(state_dir: str | None) -> StateDir:
    return StateDir(default_root(state_dir))


@dataclass(frozen=True)
class Target:
    folder: ChainFolder
    element: int | None


def element_option(function: F) -> F:
    return click.option(
        "--element",
        type=click.IntRange(min=0),
        default=None,
        help="One element of an array chain (also CHAIN_N or ARRAYJOB_N as CHAIN).",
    )(function)


def find_chain(chain: str | None, element: int | None, state_dir: str | None) -> Target:
    """The chain (and array element) that CHAIN and --element name."""
    ref, named = split_element(chain)
    if named is not None and element is not None and named != element:
        raise UsageError(f"{chain} names element {named}, --element {element}", "Give one.")
    return Target(state_of(state_dir).find(ref), element if element is not None else named)


@main.command("status", context_settings=CONTEXT)
@chain_argument(required=False)
@element_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@click.option("--timeline", is_flag=True, help="Draw the links as bars on a time axis.")
@state_dir_option
@reports_errors
def status_command(
    chain: str | None, element: int | None, as_json: bool, timeline: bool, state_dir: str | None
) -> None:
    """A chain's state and its links (default: the newest chain); an array chain's elements.
    CHAIN: chain id or any job id."""
    setup_logging("DEFAULT")
    target = find_chain(chain, element, state_dir)
    with reading(target.folder):
        view = chain_actions.status_view(target.folder, target.element)
        if timeline:
            from .timeline import timeline_text

            tty = sys.stdout.isatty()
            width = os.get_terminal_size().columns if tty else 80
            color = tty and not os.environ.get("NO_COLOR")
            text = timeline_text(view, width=width, color=color)
        elif as_json:
            text = json.dumps(view.to_json(), indent=2) + "\n"
        elif isinstance(view, ArrayView):
            text = array_status_text(view) + "\n"
        else:
            text = status_text(view) + "\n"
    click.echo(text, nl=False)


@main.command("usage", context_settings=CONTEXT)
@chain_argument(required=False)
@element_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@click.option(
    "--svg",
    "svg_path",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Also draw the links on a time axis into this SVG file.",
)
@state_dir_option
@reports_errors
def usage_command(
    chain: str | None, element: int | None, as_json: bool, svg_path: str | None,
    state_dir: str | None,
) -> None:  # fmt: skip
    """What a chain cost, link by link and in total, from Slurm's accounting (one sacct call):
    time queued, elapsed, CPU hours held and used, GPU hours, peak memory, and longrun's own
    overhead (default: the newest chain). CHAIN: chain id or any job id."""
    setup_logging("DEFAULT")
    from .usage import chain_usage
    from .usage_report import usage_svg, usage_text

    target = find_chain(chain, element, state_dir)
    with reading(target.folder):
        usage = chain_usage(target.folder, target.element)
    if svg_path is not None:
        Path(svg_path).write_text(usage_svg(usage))
    if as_json:
        click.echo(json.dumps(usage.to_json(), indent=2))
    else:
        click.echo(usage_text(usage))
        if svg_path is not None:
            click.echo(f"\nDrawn into {svg_path}.")


@main.command("logs", context_settings=CONTEXT)
@chain_argument(required=False)
@element_option
@click.option(
    "--link", "link", type=click.IntRange(min=1), default=None, help="Only link N (1-based)."
)
@click.option("--stderr", is_flag=True, help="The links' --error files instead of --output.")
@click.option(
    "-f", "--follow", is_flag=True, help="Keep printing as links write and start, like tail -f."
)
@state_dir_option
@reports_errors
def logs_command(
    chain: str | None, element: int | None, link: int | None, stderr: bool, follow: bool,
    state_dir: str | None,
) -> None:  # fmt: skip
    """The output of every link of a chain, in order, each after a line naming the link, its
    job and why it ended (default: the newest chain). CHAIN: chain id or any job id."""
    from .logs import show

    target = find_chain(chain, element, state_dir)
    try:
        show(target.folder, sys.stdout, element=target.element, link=link, stderr=stderr,
             follow_=follow)  # fmt: skip
    except KeyboardInterrupt:
        sys.exit(0)


@main.command("list", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="A JSON list, for scripts.")
@click.option("--live", is_flag=True, help="Only chains that have not ended.")
@click.option(
    "--usage", "with_usage", is_flag=True, help="Add what each chain cost (one sacct call)."
)
@state_dir_option
@reports_errors
def list_command(as_json: bool, live: bool, with_usage: bool, state_dir: str | None) -> None:
    """Your chains, newest first."""
    setup_logging("DEFAULT")
    state = state_of(state_dir)
    from .listing import list_rows_of

    rows = list_rows_of(state, live_only=live)
    if with_usage:
        from .usage import usage_of_chains

        usages = usage_of_chains(state)
        for row in rows:
            found = usages.get(row["chain_id"])
            row["usage"] = found.total.to_json() if found else None
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(list_text(rows, state.root, state.exists(), live))


@main.command("watch", context_settings=CONTEXT)
@chain_argument(required=True)
@click.option("--verbose", is_flag=True, help="Also show successors queued and signals passed on.")
@click.option("--from-start", is_flag=True, help="Report the chain's events from its submission.")
@state_dir_option
@reports_errors
def watch_command(chain: str, verbose: bool, from_start: bool, state_dir: str | None) -> None:
    """Follow a chain until it ends; exit 0 only if it completed. Ctrl-C leaves it running."""
    setup_logging("VERBOSE" if verbose else "DEFAULT")
    state = state_of(state_dir)
    from .watcher import watch_until_end

    folder = state.find(chain)
    with reading(folder):
        code = watch_until_end(folder, state, verbose, replay=from_start)
    sys.exit(code)


@main.command("keeper", context_settings=CONTEXT)
@click.option("--once", is_flag=True, help="One pass over every chain, then exit (for cron).")
@click.option(
    "--interval",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="Seconds between passes.",
)
@click.option("--install", is_flag=True, help="Run `longrun keeper --once` from your crontab.")
@click.option("--uninstall", is_flag=True, help="Take that line out of your crontab again.")
@state_dir_option
@reports_errors
def keeper_command(
    once: bool, interval: float, install: bool, uninstall: bool, state_dir: str | None
) -> None:
    """On a login node: queue the successors that links on compute nodes may not submit (sites
    whose compute nodes refuse sbatch, or chains submitted with --submit-from=login). One
    squeue call a pass for all your chains; sbatch only for a missing successor."""
    setup_logging("DEFAULT")
    from . import keeper

    state = state_of(state_dir)
    if install and uninstall:
        raise UsageError("--install and --uninstall together", "Give one of them.")
    if install or uninstall:
        click.echo(f"longrun keeper: {keeper.install(state, remove=uninstall)}")
        return
    sys.exit(keeper.run(state, once=once, interval=interval))


@main.command("cancel", context_settings=CONTEXT)
@chain_argument(required=True)
@element_option
@state_dir_option
@reports_errors
def cancel_command(chain: str, element: int | None, state_dir: str | None) -> None:
    """Cancel a whole chain (its queued successor first, then its running link); an array
    chain: every element, or one with --element."""
    setup_logging("DEFAULT")
    target = find_chain(chain, element, state_dir)
    with reading(target.folder):
        result = chain_actions.cancel_chain(target.folder, target.element)
    jobs = ", ".join(result.cancelled) or "none were queued"
    name = element_key(target.folder.chain_id, target.element)
    if result.already_ended:
        click.echo(f"Chain {name} had already ended {result.already_ended}; jobs cancelled: {jobs}")
    else:
        click.echo(f"Chain {name} {states.CHAIN_CANCELLED}; jobs cancelled: {jobs}")


@main.command("verify", context_settings=CONTEXT)
@chain_argument(required=False)
@click.option("--all", "every", is_flag=True, help="Every chain in the state directory.")
@state_dir_option
@reports_errors
def verify_command(chain: str | None, every: bool, state_dir: str | None) -> None:
    """Check that a chain kept longrun's promises (its event logs against Slurm's accounting):
    no two links at once, each link judged and continued once, one end, nothing left queued.
    Exit status 1 if anything is wrong."""
    setup_logging("DEFAULT")
    from .verify import report_text, verify

    state = state_of(state_dir)
    if every == (chain is not None):
        raise UsageError("give a CHAIN or --all", "longrun verify CHAIN, or longrun verify --all")
    folders = state.list() if every else [state.find(chain)]
    reports = [report for folder in folders for report in verify(folder)]
    for report in reports:
        click.echo(report_text(report))
    bad = [report for report in reports if not report.ok]
    click.echo(f"{len(reports) - len(bad)} of {len(reports)} chain(s) kept every promise.")
    sys.exit(1 if bad else 0)


@main.command("show", context_settings=CONTEXT)
@chain_argument(required=True)
@click.option("--original", is_flag=True, help="Your script as submitted, not the link script.")
@click.option("--library", is_flag=True, help="The helper library the link script runs.")
@state_dir_option
@reports_errors
def show_command(chain: str, original: bool, library: bool, state_dir: str | None) -> None:
    """Print the link script that every link of the chain runs (or, with --original, yours;
    with --library, the helper library it checks and runs)."""
    if original and library:
        raise UsageError("--original and --library show different files", "Give one of them.")
    folder = state_of(state_dir).find(chain)
    path = folder.script_file if original else folder.link_script
    path = folder.library_file if library else path
    try:
        click.echo(read_regular(str(path)), nl=False)
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror}") from exc
