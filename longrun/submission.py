"""Submitting a chain: read the script, plan, render, write the chain folder, run sbatch once.

Nothing is left behind when anything fails: the chain folder (and a state directory this call
created) is removed again, and sbatch's own message reaches the user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import shutil
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from . import __version__, log, protocol, slurm
from .batch_script import UserScript, load_script, wrap_script
from .chain_record import ChainRecord
from .chain_store import ChainFolder, StateDir, default_root, new_chain_id
from .errors import UsageError
from .files import node_local
from .plan import DROPPED_VARIABLES, ChainLocation, LinkPlan, WrapperOptions, build_plan
from .render import library_sha256, render_library, render_link_script
from .sbatch_options import ParsedArgs, last_value, parse_args


@dataclass(frozen=True)
class Submitted:
    """A chain whose first link Slurm accepted."""

    chain_id: str
    job_id: str
    folder: ChainFolder
    plan: LinkPlan


@dataclass(frozen=True)
class DryRun:
    """What would have been submitted."""

    script: str
    command: list[str]
    plan: LinkPlan


@dataclass(frozen=True)
class TestOnly:
    """sbatch --test-only's answer; no chain was created."""

    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class SbatchCall:
    """sbatch's arguments as the user gave them, parsed once: what every step reads."""

    argv: tuple[str, ...]
    args: ParsedArgs
    wrap: str | None  # --wrap's command

    @classmethod
    def parse(cls, argv: Sequence[str]) -> SbatchCall:
        args = parse_args(argv)
        wrap = last_value(args.options, "wrap")
        return cls(tuple(argv), args, None if wrap is None else wrap.value or "")

    @property
    def reads_stdin(self) -> bool:
        """No script file and no --wrap: sbatch reads the script from standard input."""
        return self.wrap is None and not self.args.operands

    @property
    def test_only(self) -> bool:
        """--test-only on the command line (in the script's #SBATCH lines: LinkPlan.test_only)."""
        return any(o.name == "test-only" for o in self.args.options)


def read_user_script(call: SbatchCall, stdin: str | None) -> tuple[UserScript, list[str]]:
    """The script (from a file, stdin or --wrap) and its arguments, as sbatch finds them."""
    operands = call.args.operands
    if call.wrap is not None:
        if operands:
            raise UsageError(
                "a script argument is not permitted with --wrap (sbatch refuses it too)",
                "Give either a script or --wrap=COMMAND.",
            )
        return wrap_script(call.wrap), []
    if operands:
        return load_script(operands[0]), list(operands[1:])
    return load_script(None, stdin), []


def sbatch_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment sbatch runs with: the user's, without variables that would make it wait."""
    return {k: v for k, v in environ.items() if k not in DROPPED_VARIABLES}


def submit(
    wrapper: WrapperOptions,
    sbatch_argv: Sequence[str],
    *,
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
    stdin_reader: Callable[[], str] | None = None,
) -> Submitted | DryRun | TestOnly:
    """Submit `sbatch_argv` (sbatch options, script, script arguments) as a chain."""
    env = dict(os.environ if environ is None else environ)
    submit_dir = os.path.abspath(cwd or os.getcwd())
    call = SbatchCall.parse(sbatch_argv)
    if call.test_only:
        return _test_only(call, env, submit_dir, stdin_reader)

    stdin_text = _read_stdin(stdin_reader) if call.reads_stdin else None
    script, script_args = read_user_script(call, stdin_text)

    sbatch_path = shutil.which("sbatch", path=env.get("PATH"))
    if sbatch_path is None and not wrapper.dry_run:
        raise slurm.SlurmCommandError(
            ["sbatch"],
            "sbatch: command not found",
            returncode=127,
            hint="Slurm's commands must be on PATH: load your site's Slurm module, or run "
            "this on a login node of the cluster. Nothing was submitted.",
        )

    state_dir = StateDir(default_root(wrapper.state_dir, env))
    chain_id = new_chain_id()
    where = ChainLocation(
        chain_id=chain_id,
        chain_dir=str(state_dir.chains / chain_id),
        state_dir=str(state_dir.root),
        submit_dir=submit_dir,
        slurm_bin_dir=os.path.dirname(sbatch_path) if sbatch_path else "",
    )
    plan = build_plan(wrapper, call.args, script, script_args, where, env)
    if plan.test_only:
        return _test_only(call, env, submit_dir, stdin_reader, stdin_text)
    # A dry run asks Slurm nothing: it shows `--local`, as on a cluster in no federation.
    if sbatch_path is not None and not plan.clusters and not wrapper.dry_run and slurm.federated():
        plan = replace(plan, federated=True)
    text = render_link_script(plan)
    for warning in plan.warnings:
        log.warning(warning)
    if wrapper.dry_run:
        return DryRun(text, plan.first_command(), plan)

    created = state_dir.ensure()
    _warn_if_node_local(state_dir.root, slurm.cluster_args(plan.clusters))
    try:
        with state_dir.creating(chain_id) as folder:
            folder.write_script(script.text)
            # sbatch sets SLURM_JOB_NAME in the environment it sends, but not in one it reads
            # with --export-file (Slurm 22.05), and slurmd names %x files from it.
            folder.write_env({**sbatch_environment(env), "SLURM_JOB_NAME": plan.job_name})
            folder.write_library(render_library())
            folder.write_link_script(text)
            folder.write_meta(_record(plan, script, sbatch_argv, env))
            command = plan.first_command()
            folder.append_event(protocol.SUBMITTING, command=shlex.join(command))
            job_id = slurm.sbatch(command[1:], cwd=submit_dir, env=sbatch_environment(env))
            state_dir.record_job(job_id, chain_id)
            folder.append_event(protocol.SUBMITTED, job=job_id, restart_count=0)
    except BaseException:
        for path in reversed(created):
            with contextlib.suppress(OSError):  # only while empty: another chain may be in it
                path.rmdir()
        raise
    return Submitted(chain_id, job_id, folder, plan)


def _warn_if_node_local(root: Path, clusters: list[str]) -> None:
    """Warn when links on other nodes could not see the chain folder (one sinfo call, made
    only for a state directory that looks node-local)."""
    why = node_local(root)
    if why is None:
        return
    try:
        # Node host names (%n): nodes on this very machine share its file systems.
        hosts = slurm.node_hosts(clusters)
    except slurm.SlurmCommandError:
        return
    here = socket.gethostname()
    if hosts - {here, here.split(".")[0]}:
        log.warning(
            f"the state directory {root} is on {why}, and the cluster has other hosts: "
            "a link that runs on another node cannot see the chain folder and fails. Use "
            "--state-dir (or $LONGRUN_HOME) on a shared file system; your home usually is."
        )


def _read_stdin(stdin_reader: Callable[[], str] | None) -> str:
    reader = stdin_reader or (lambda: sys.stdin.read())
    if stdin_reader is None and sys.stdin.isatty():
        raise UsageError(
            "no batch script given",
            "Give a script: sbatch_longrun [options] script.sbatch [args], or pipe one in, "
            "or use --wrap=COMMAND.",
        )
    return reader()


def _test_only(
    call: SbatchCall,
    env: Mapping[str, str],
    submit_dir: str,
    stdin_reader: Callable[[], str] | None,
    stdin_text: str | None = None,
) -> TestOnly:
    """Let sbatch validate the submission as the user wrote it; create no chain."""
    if stdin_text is None and call.reads_stdin:
        stdin_text = _read_stdin(stdin_reader)
    result = slurm.sbatch_test_only(
        call.argv, cwd=submit_dir, env=sbatch_environment(env), input=stdin_text
    )
    return TestOnly(result.returncode, result.stdout, result.stderr)


def _record(
    plan: LinkPlan, script: UserScript, sbatch_argv: Sequence[str], env: Mapping[str, str]
) -> ChainRecord:
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid without a passwd entry (some containers)
        user = env.get("USER", str(os.getuid()))
    return ChainRecord.from_plan(
        plan,
        sbatch_argv=sbatch_argv,
        script_source=script.source,
        library_sha256=library_sha256(render_library()),
        user=user,
        uid=os.getuid(),
        host=os.uname().nodename,
        created=time.strftime("%Y-%m-%dT%H:%M:%S"),
        longrun_version=__version__,
    )
