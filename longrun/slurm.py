"""The one place that builds and runs Slurm's commands: argument lists (never a shell),
captured output, a timeout, and SlurmCommandError with the command and Slurm's words. The
output is read by the pure parsers of longrun.slurm_output."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import log
from .errors import LongrunError, SlurmCommandError
from .slurm_output import (
    ACCOUNTING_FORMAT,
    NO_ACCOUNTING,
    QUEUE_FORMAT,
    TAG_FORMAT,
    USAGE_FORMAT,
    AccountingRow,
    QueueRow,
    TaggedRow,
    UsageRow,
    parse_sacct,
    parse_sbatch_job_id,
    parse_slurm_version,
    parse_squeue,
    parse_tagged,
    parse_usage,
)

if TYPE_CHECKING:
    import subprocess

DEFAULT_TIMEOUT = 60.0


def run(
    args: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    input: str | None = None,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run one Slurm command; raise SlurmCommandError with its stderr when it fails (if check)."""
    import subprocess  # here: commands that only read the state folder never need it

    command = [str(a) for a in args]
    log.debug("running {}", command)
    try:
        result = subprocess.run(
            [_executable(command[0]), *command[1:]],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            check=False,
        )
    except FileNotFoundError as exc:
        raise SlurmCommandError(
            command,
            f"{command[0]}: command not found",
            returncode=127,
            hint="Slurm's commands must be on PATH: load your site's Slurm module, "
            "or run this on a login node of the cluster.",
        ) from exc
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        raise SlurmCommandError(
            command,
            stderr,
            returncode=None,
            hint=f"No answer within {timeout:.0f}s: is slurmctld reachable (`scontrol ping`)?",
        ) from exc
    if check and result.returncode != 0:
        raise SlurmCommandError(command, result.stderr, returncode=result.returncode)
    return result


def _executable(name: str) -> str:
    """Slurm's command as the caller's own PATH finds it, in absolute folders only: never
    through the PATH of the environment handed to it (a chain's snapshot) nor in whatever
    folder longrun runs in."""
    import shutil  # here, as subprocess: commands that only read never need it

    if "/" in name:
        return name
    folders = os.environ.get("PATH", os.defpath).split(os.pathsep)
    found = shutil.which(name, path=os.pathsep.join(f for f in folders if f.startswith("/")))
    return found or f"/nonexistent/{name}"  # FileNotFoundError: reported as not found


# --- the commands longrun runs, one function each -------------------------------------------


def cluster_args(clusters: str | None) -> list[str]:
    """-M CLUSTERS for every Slurm command of a chain submitted with -M/--clusters."""
    return ["-M", clusters] if clusters else []


def sbatch(
    args: Sequence[str], *, cwd: str | Path, env: Mapping[str, str], timeout: float = 120
) -> str:
    """Submit one job (`args` without "sbatch"); its job id."""
    result = run(["sbatch", *args], cwd=cwd, env=env, timeout=timeout)
    return parse_sbatch_job_id(result.stdout)


def sbatch_test_only(
    args: Sequence[str], *, cwd: str | Path, env: Mapping[str, str], input: str | None
) -> subprocess.CompletedProcess[str]:
    """sbatch as the user wrote it (with --test-only): its answer, whatever it is."""
    return run(["sbatch", *args], cwd=cwd, env=env, input=input, check=False)


def queue_rows(job_ids: Iterable[str], clusters: Sequence[str] = ()) -> dict[str, QueueRow]:
    """One squeue call: what slurmctld knows of these jobs (finished ones within MinJobAge)."""
    ids = sorted(set(job_ids), key=_job_order)
    if not ids:
        return {}
    result = run(
        ["squeue", *clusters, "-r", "-h", "-t", "all", "-j", ",".join(ids), "-O", QUEUE_FORMAT],
        check=False,
    )
    if result.returncode != 0:
        if "Invalid job id" in result.stderr:
            return {}
        raise SlurmCommandError(["squeue", "-j", ",".join(ids)], result.stderr, result.returncode)
    return parse_squeue(result.stdout)


def accounting_rows(
    job_ids: Iterable[str], clusters: Sequence[str] = ()
) -> dict[str, AccountingRow] | None:
    """End records from the accounting database: empty on a cluster without accounting, None
    when sacct did not answer (no answer is not "no record")."""
    ids = sorted(set(job_ids), key=_job_order)
    if not ids:
        return {}
    try:
        result = run(
            ["sacct", *clusters, "-n", "-X", "-P", "-j", ",".join(ids), "-o", ACCOUNTING_FORMAT],
            timeout=30,
        )
    except SlurmCommandError as exc:
        if NO_ACCOUNTING in exc.stderr:
            return {}
        log.debug("sacct did not answer: {}", exc)
        return None
    return parse_sacct(result.stdout)


def usage_rows(job_ids: Iterable[str], since: str, clusters: Sequence[str] = ()) -> list[UsageRow]:
    """Every run (-D: a requeued job's earlier runs too) of these jobs that was in the queue at
    or after `since` (a chain's submit time: a job id Slurm used before is not this chain's),
    in one sacct call. Raises SlurmCommandError when sacct does not answer or keeps nothing."""
    ids = sorted(set(job_ids), key=_job_order)
    if not ids:
        return []
    command = ["sacct", *clusters, "-P", "-D", "-j", ",".join(ids), "-o", USAGE_FORMAT]
    if since:
        command += ["-S", since, "-E", "now"]
    try:
        return parse_usage(run(command, timeout=60).stdout)
    except SlurmCommandError as exc:
        if NO_ACCOUNTING in exc.stderr:
            raise LongrunError(
                "this cluster keeps no accounting (sacct: accounting storage is disabled)",
                "What a chain cost comes from Slurm's accounting; ask your site about slurmdbd.",
            ) from None
        raise


def scancel(job_id: str, clusters: Sequence[str] = ()) -> None:
    """Cancel one job; a job that has just ended is not an error."""
    result = run(["scancel", *clusters, job_id], check=False)
    harmless = ("already completing or completed", "Invalid job id")
    if result.returncode != 0 and not any(text in result.stderr for text in harmless):
        raise SlurmCommandError(["scancel", job_id], result.stderr, result.returncode)


def user_jobs(clusters: Sequence[str] = ()) -> list[TaggedRow]:
    """Every job of this user that slurmctld knows, with its state and --comment (one squeue
    call). Raises SlurmCommandError when squeue does not answer."""
    result = run(["squeue", *clusters, "-h", "--me", "-t", "all", "-O", TAG_FORMAT])
    return parse_tagged(result.stdout)


def tagged_jobs(tag: str, clusters: Sequence[str] = ()) -> list[str]:
    """Queued jobs of this user whose --comment ends with the tag (a successor whose sbatch
    answer was lost). Raises SlurmCommandError when squeue does not answer."""
    found = [row.job_id for row in user_jobs(clusters) if row.tag_matches(tag)]
    # The lowest first: every component of a heterogeneous job carries the tag; the first
    # component, which names the job, has the lowest id.
    return sorted(found, key=_job_order)


def node_hosts(clusters: Sequence[str] = ()) -> set[str]:
    """The host names (%n) of the cluster's nodes."""
    return set(run(["sinfo", *clusters, "-h", "-N", "-o", "%n"], timeout=30).stdout.split())


def federated() -> bool:
    """Whether the cluster is in a Slurm federation (`scontrol show federation` prints nothing
    otherwise). Not knowing counts as yes: then the job side keeps asking through it."""
    try:
        return bool(run(["scontrol", "show", "federation"], timeout=30).stdout.strip())
    except SlurmCommandError as exc:
        log.debug("federation unknown: {}", exc)
        return True


def _job_order(job: str) -> tuple[int, int]:
    """Job ids (`123`) and array tasks (`123_4`) in numeric order."""
    head, _, task = job.partition("_")
    return int(head), int(task or -1)


# Enough of a configuration for a Slurm command to print its version: without one, sbatch
# fails before it reads its options (24.11 and 22.05 look for a DNS SRV record, then give up).
VERSION_ONLY_CONF = "ClusterName=none\nSlurmctldHost=localhost\n"


def version() -> str:
    """The version of the Slurm whose sbatch is on PATH, or why it is not known. Where sbatch
    finds no configuration (no SLURM_CONF on a machine without /etc/slurm), it is asked again
    with a configuration that only names a cluster: its version is its own either way."""
    import os
    import tempfile

    try:
        found = _sbatch_version()
    except SlurmCommandError as exc:
        if exc.returncode == 127:
            return "not found: sbatch is not on PATH"
        if exc.returncode is None:
            return "did not answer"
        with tempfile.TemporaryDirectory(prefix="longrun-version-") as folder:
            conf = Path(folder) / "slurm.conf"
            conf.write_text(VERSION_ONLY_CONF)
            try:
                found = _sbatch_version({**os.environ, "SLURM_CONF": str(conf)})
            except SlurmCommandError:
                return "version unknown"
    return found or "version unknown"


def _sbatch_version(env: Mapping[str, str] | None = None) -> str | None:
    return parse_slurm_version(run(["sbatch", "--version"], timeout=10, env=env).stdout)
