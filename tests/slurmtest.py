"""Helpers for end-to-end tests on the local cluster: submit, wait for states, cause end states.

Every wait polls a real condition with a deadline; nothing here sleeps for a fixed time and hopes.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from longrun import slurm
from longrun.errors import SlurmCommandError

T = TypeVar("T")

# States in which Slurm has finished with a job (sacct and squeue spellings).
FINAL_STATES = {
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "REVOKED",
    "TIMEOUT",
}


class WaitTimeout(AssertionError):
    """A polled condition did not come true before its deadline."""


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.5,
) -> T:
    """Call probe until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


@dataclass(frozen=True)
class SacctRecord:
    job_id: str
    state: str
    exit_code: str
    partition: str
    raw_state: str
    start: str
    end: str


def squeue_state(job_id: str) -> str | None:
    """Slurm's current state of a job while slurmctld still knows it (MinJobAge), else None."""
    result = slurm.run(["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T"], check=False)
    state = result.stdout.strip()
    return state or None


def sacct_records(job_id: str) -> list[SacctRecord]:
    """Every accounting record of a job's allocation, one per run (a requeued job has several)."""
    result = slurm.run(
        ["sacct", "-n", "-X", "-P", "-D", "-j", job_id, "-o",
         "JobID,State,ExitCode,Partition,Start,End,JobIDRaw"],
        check=False,
    )  # fmt: skip
    records = []
    for line in result.stdout.splitlines():
        fields = line.split("|")
        # JobID: an array task as ARRAYJOB_TASK; JobIDRaw: a heterogeneous job's first
        # component by the job's own id (its JobID is JOB+0).
        if len(fields) == 7 and job_id in (fields[0], fields[6]):
            records.append(
                SacctRecord(
                    job_id=fields[0],
                    state=fields[1].split()[0] if fields[1] else "",
                    exit_code=fields[2],
                    partition=fields[3],
                    raw_state=fields[1],
                    start=fields[4],
                    end=fields[5],
                )
            )
    return records


def sacct_record(job_id: str) -> SacctRecord | None:
    """The accounting record of a job's last run, or None if not there yet."""
    records = sacct_records(job_id)
    return records[-1] if records else None


class Cluster:
    """The running local cluster, as the tests see it."""

    def __init__(self, conf: str) -> None:
        self.conf = conf
        # The node of the default partition; `multi` adds a second one (node_b).
        self.node = slurm.run(["sinfo", "-h", "-N", "-p", "main", "-o", "%N"]).stdout.split()[0]
        cpus = slurm.run(["sinfo", "-h", "-N", "-p", "main", "-o", "%c"]).stdout.split()[0]
        self.cpus = int(cpus)
        nodes = slurm.run(["sinfo", "-h", "-N", "-p", "multi", "-o", "%N"]).stdout.split()
        self.node_b = next((node for node in nodes if node != self.node), "")
        # What `sbatch --version` reports (`22.05.8`, as (22, 5)): for assertions that differ.
        self.version_text = slurm.version()
        self.version = tuple(int(part) for part in self.version_text.split(".")[:2])
        # Set by conftest while a `disruptive` test holds the node lock exclusively: the
        # faults below reach every job on the node, so only such a test may cause them.
        self.exclusive = False

    # --- submitting -------------------------------------------------------------------------
    def sbatch(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
        """Submit with plain sbatch and return the job id."""
        result = slurm.run(["sbatch", "--parsable", *args], cwd=cwd, env=env)
        return result.stdout.strip().split(";")[0]

    # --- waiting ----------------------------------------------------------------------------
    def wait_state(self, job_id: str, states: Iterable[str], timeout: float = 120) -> str:
        """Wait until squeue (or, once the job left slurmctld, sacct) shows one of `states`."""
        wanted = set(states)

        def probe() -> str | None:
            state = squeue_state(job_id)
            if state is None:
                record = sacct_record(job_id)
                state = record.state if record else None
            return state if state in wanted else None

        return wait_for(probe, timeout=timeout, what=f"job {job_id} to reach {sorted(wanted)}")

    def wait_final(self, job_id: str, timeout: float = 180) -> str:
        """Wait until the job has ended in any final state; return that state."""
        return self.wait_state(job_id, FINAL_STATES, timeout=timeout)

    def wait_sacct(self, job_id: str, states: Iterable[str], timeout: float = 60) -> SacctRecord:
        """Wait until accounting records the job in one of `states` (slurmdbd lags a little)."""
        wanted = set(states)

        def probe() -> SacctRecord | None:
            record = sacct_record(job_id)
            return record if record and record.state in wanted else None

        return wait_for(probe, timeout=timeout, what=f"sacct to record job {job_id} as {wanted}")

    def wait_sacct_run(
        self, job_id: str, states: Iterable[str], timeout: float = 60
    ) -> SacctRecord:
        """Wait until accounting records any run of the job in one of `states` (requeues)."""
        wanted = set(states)

        def probe() -> SacctRecord | None:
            return next((r for r in sacct_records(job_id) if r.state in wanted), None)

        return wait_for(
            probe, timeout=timeout, what=f"sacct to record a run of {job_id} as {wanted}"
        )

    def wait_file(self, path: Path, text: str | None = None, timeout: float = 60) -> str:
        """Wait until a file exists (and contains `text`); return its content."""

        def probe() -> str | None:
            if not path.exists():
                return None
            content = path.read_text(errors="replace")
            return content if text is None or text in content else None

        return wait_for(probe, timeout=timeout, what=f"{path} to contain {text!r}")

    def queue(self, job_ids: Iterable[str]) -> dict[str, str]:
        """Job id -> state for the given jobs that are still pending or running."""
        ids = ",".join(job_ids)
        if not ids:
            return {}
        result = slurm.run(["squeue", "-h", "-j", ids, "-o", "%i|%T"], check=False)
        pairs = (line.split("|", 1) for line in result.stdout.splitlines() if "|" in line)
        return {job: state for job, state in pairs}

    def jobs_named(self, name: str) -> dict[str, str]:
        """Job id -> state for every job of this name that slurmctld still knows."""
        result = slurm.run(["squeue", "-h", "-t", "all", "-n", name, "-o", "%i|%T"], check=False)
        pairs = (line.split("|", 1) for line in result.stdout.splitlines() if "|" in line)
        return {job: state for job, state in pairs}

    def mails(self, job_name: str) -> list[str]:
        """Subjects of the mails slurmctld sent about jobs of this name (the local cluster's
        MailProg writes them to log/mail.log beside etc/)."""
        path = Path(self.conf).parent.parent / "log" / "mail.log"
        lines = path.read_text().splitlines() if path.exists() else []
        return [line.split("subject=", 1)[1] for line in lines if f" Name={job_name} " in line]

    # --- causing end states -----------------------------------------------------------------
    def _disturbs(self, what: str) -> None:
        if not self.exclusive:
            raise AssertionError(
                f"{what} reaches other tests' jobs: mark the test @pytest.mark.disruptive"
            )

    def cancel(self, *job_ids: str) -> None:
        slurm.run(["scancel", *job_ids], check=False)

    def preempt(self, victim: str, *, hold_seconds: int = 5) -> str:
        """Submit a job in the high partition that needs the whole node, preempting `victim`.

        The victim must be running in `main` (CANCEL mode) or `requeue` (REQUEUE mode).
        Returns the preemptor's job id; it ends by itself after `hold_seconds`.
        """
        self._disturbs("a preemption")
        self.wait_state(victim, {"RUNNING"}, timeout=60)
        return self.sbatch(
            "-p",
            "high",
            "-c",
            str(self.cpus),
            "-J",
            "preemptor",
            "-o",
            "/dev/null",
            "--wrap",
            f"sleep {hold_seconds}",
        )

    def cancel_jobs_under(self, folder: Path) -> None:
        """Cancel every job still queued or running whose working directory lies in `folder`:
        what a failed test left behind (a body waiting for a file that never comes) would
        otherwise hold the node for the tests after it."""
        result = slurm.run(["squeue", "-h", "-o", "%i|%Z"], check=False)
        jobs = []
        for line in result.stdout.splitlines():
            job, _, workdir = line.partition("|")
            if workdir == str(folder) or workdir.startswith(f"{folder}/"):
                jobs.append(job.split("+")[0])
        if jobs:
            slurm.run(["scancel", *sorted(set(jobs))], check=False)

    def end_preemptors(self) -> None:
        """Cancel every preemptor still pending or running and wait until it has left the node:
        one that a disruptive test left pending would otherwise start once the exclusive lock
        is released and preempt the links of the tests that run next (seen on 24.11 under load:
        a time-limit test's job recorded PREEMPTED)."""

        def active() -> list[str]:
            jobs = self.jobs_named("preemptor")
            return [
                job for job, state in jobs.items() if state in {"PENDING", "RUNNING", "COMPLETING"}
            ]

        if active():
            slurm.run(["scancel", "-n", "preemptor"], check=False)
            wait_for(lambda: not active(), timeout=60, what="the preemptors to leave the node")

    def preempt_time(self, job_id: str) -> str | None:
        """The PreemptTime slurmctld shows for a job, or None if it was not preempted."""
        result = slurm.run(
            ["squeue", "-h", "-t", "all", "-j", job_id, "-O", "PreemptTime"], check=False
        )
        value = result.stdout.strip()
        return value if value and value not in {"N/A", "None", "Unknown"} else None

    def job_field(self, job_id: str, key: str) -> str | None:
        """One field of `scontrol show job -o` (harness jobs have plain names: a regex will do)."""
        result = slurm.run(["scontrol", "show", "job", "-o", job_id], check=False)
        match = re.search(rf"(?:^|\s){re.escape(key)}=(\S*)", result.stdout)
        return match.group(1) if match else None

    def node_state(self, node: str | None = None) -> str:
        # sinfo prints the node once per partition; the state is the same on every line.
        name = node or self.node
        lines = slurm.run(["sinfo", "-h", "-N", "-n", name, "-o", "%T"]).stdout.split()
        return lines[0] if lines else ""

    @contextlib.contextmanager
    def node_down(self, node: str | None = None, reason: str = "longrun-test") -> Iterator[None]:
        """Mark a node DOWN (killing its jobs as a node failure would), then bring it back."""
        self._disturbs("a node down")
        name = node or self.node
        slurm.run(["scontrol", "update", f"nodename={name}", "state=down", f"reason={reason}"])
        try:
            yield
        finally:
            self.resume_node(name)

    @contextlib.contextmanager
    def node_dead(self, node: str, job_id: str) -> Iterator[None]:
        """A node that dies silently: its slurmd stops (by its pid file) and the job's
        processes there are killed; slurmctld notices only after SlurmdTimeout. The slurmd
        comes back (and the node with it, ReturnToService=2) at the end of the block."""
        self._disturbs("a dead node")
        run_local_slurm("stop", f"slurmd-{node}")
        wanted = {f"SLURMD_NODENAME={node}".encode(), f"SLURM_JOB_ID={job_id}".encode()}
        for environ in Path("/proc").glob("[0-9]*/environ"):
            try:
                if wanted <= set(environ.read_bytes().split(b"\0")):
                    os.kill(int(environ.parent.name), signal.SIGKILL)
            except OSError:
                continue
        try:
            yield
        finally:
            run_local_slurm("up")
            self.resume_node(node)

    @contextlib.contextmanager
    def slurmd_hung(self, node: str) -> Iterator[None]:
        """The slurmd of `node` stopped (SIGSTOP, by the pid file the cluster script wrote) for
        the length of the block: its jobs' processes run on, cut off from slurmctld, which
        marks the node down after SlurmdTimeout (NODE_FAIL). SIGCONT at the end."""
        self._disturbs("a hung slurmd")
        pid = int((Path(self.conf).parent.parent / "run" / f"slurmd-{node}.pid").read_text())
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)
            self.resume_node(node)

    def restart_daemon(self, name: str) -> None:
        """Stop one daemon of the local cluster by its pid file, then bring the cluster up."""
        self._disturbs("a daemon restart")
        run_local_slurm("stop", name)
        run_local_slurm("up")

    @contextlib.contextmanager
    def daemon_down(self, name: str) -> Iterator[None]:
        """A daemon of the local cluster (e.g. slurmdbd) stopped for the length of the block."""
        self._disturbs("a daemon down")
        run_local_slurm("stop", name)
        try:
            yield
        finally:
            run_local_slurm("up")

    def resume_node(self, node: str | None = None) -> None:
        """Return a node (by default: every node) to service and wait until it takes jobs."""
        names = [node] if node else [n for n in (self.node, self.node_b) if n]
        for name in names:
            if self.node_state(name).startswith(("down", "drain", "fail")):
                slurm.run(["scontrol", "update", f"nodename={name}", "state=resume"], check=False)
        for name in names:
            wait_for(
                lambda name=name: (
                    # (planned: 24.11's word for a node kept free for a pending job)
                    self.node_state(name).rstrip("*")
                    in {"idle", "mixed", "allocated", "planned", "completing"}
                ),
                timeout=60,
                what=f"node {name} to return to service",
            )


def run_local_slurm(*args: str) -> None:
    """example/local-slurm.sh with these arguments (the cluster the tests run on)."""
    script = Path(__file__).resolve().parents[1] / "example" / "local-slurm.sh"
    subprocess.run(["bash", str(script), *args], check=True, capture_output=True)


def cluster_problem() -> str | None:
    """Why the local cluster cannot be used, or None if it answers."""
    conf = os.environ.get("SLURM_CONF")
    if not conf:
        return 'SLURM_CONF is not set: run `eval "$(bash example/local-slurm.sh env)"` first'
    if not Path(conf).is_file():
        return f"SLURM_CONF={conf} does not exist: run `bash example/local-slurm.sh up` first"
    try:
        slurm.run(["scontrol", "ping"], timeout=20)
        slurm.run(["sacct", "-n", "-X", "-S", "now-1minutes"], timeout=20)
    except SlurmCommandError as exc:
        return f"the local cluster does not answer: {exc}"
    return None
