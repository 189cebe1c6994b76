"""Helpers for end-to-end chain tests: submit with the installed commands, read the chain folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longrun.chain_store import ChainFolder
from longrun.slurm_output import slurm_epoch
from longrun.verify import verify
from slurmtest import Cluster, WaitTimeout, sacct_record, wait_for


def command(name: str) -> str:
    """The installed console script (the package as users get it), next to this Python."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    assert found, f"{name} is not installed"
    return found


def run_cli(
    name: str,
    *args: str | bytes,
    cwd: Path,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [command(name), *args],
        cwd=cwd,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Chain:
    """A submitted chain, read from its folder the way longrun itself reads it."""

    state_dir: Path
    chain_id: str
    first_job: str
    cluster: Cluster

    @property
    def folder(self) -> Path:
        return self.state_dir / "chains" / self.chain_id

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The chain's events from every writer, merged by time as longrun reads them."""
        events = ChainFolder(self.folder).read_events() if self.folder.exists() else []
        return [e for e in events if kind is None or e["event"] == kind]

    def body_runs(self) -> list[str]:
        """The job ids whose link started the user's script, in order."""
        return [str(e["job"]) for e in self.events("body_started")]

    def links(self) -> list[str]:
        """Job ids of the links that started, in order (a Slurm requeue is not a new link, and
        a job that lost the claim on its predecessor is none)."""
        lost = {event["job"] for event in self.events("claim_lost")}
        seen: list[str] = []
        for event in self.events("link_started"):
            if event["job"] not in seen and event["job"] not in lost:
                seen.append(event["job"])
        return seen

    def jobs(self) -> set[str]:
        """Every job id the chain ever had: links and successors."""
        ids = {self.first_job}
        for event in self.events():
            for key in ("job", "successor"):
                if event.get(key):
                    ids.add(str(event[key]))
        return ids

    def ended(self) -> str | None:
        path = self.folder / "ended"
        return path.read_text().strip() if path.exists() else None

    def queued(self) -> dict[str, str]:
        return self.cluster.queue(self.jobs())

    def wait_end(self, timeout: float = 300) -> str:
        """Wait until the chain recorded its end and none of its jobs is queued any more."""
        return wait_for(
            lambda: self.ended() if self.ended() and not self.queued() else None,
            timeout=timeout,
            what=f"chain {self.chain_id} to end with nothing left in the queue",
        )

    def wait_event(self, kind: str, count: int = 1, timeout: float = 120) -> list[dict[str, Any]]:
        return wait_for(
            lambda: (lambda found: found if len(found) >= count else None)(self.events(kind)),
            timeout=timeout,
            what=f"{count} '{kind}' event(s) in chain {self.chain_id}",
        )

    def signal_when_ready(self, workdir: Path, ready: str, signal: str = "USR1") -> str:
        """Once link 1's script has written `ready` to out.txt, send `signal` to its batch shell
        as Slurm's pre-timeout --signal=B: would; return that link's job id."""
        first = self.wait_link_running(0)
        self.cluster.wait_file(workdir / "out.txt", ready)
        subprocess.run(
            ["scancel", "--batch", f"--signal={signal}", first], check=True, capture_output=True
        )
        return first

    def wait_link_running(self, index: int, timeout: float = 120) -> str:
        """The job id of link `index` once its body has started."""
        events = wait_for(
            lambda: (
                [e for e in self.events("body_started") if int(e["restart_count"]) == index] or None
            ),
            timeout=timeout,
            what=f"link {index} of chain {self.chain_id} to start its script",
        )
        return str(events[-1]["job"])


def submit_chain(
    cluster: Cluster,
    workdir: Path,
    script: str,
    *sbatch_args: str,
    wrapper: Sequence[str] = (),
    script_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    name: str = "job.sh",
) -> Chain:
    """Write `script` into workdir and submit it with sbatch_longrun --no-watch."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / name
    path.write_text(script)
    state = workdir / "state"
    result = run_cli(
        "sbatch_longrun",
        "--no-watch",
        "--state-dir",
        str(state),
        *wrapper,
        *sbatch_args,
        name,
        *script_args,
        cwd=workdir,
        env=env,
    )
    assert result.returncode == 0, f"submission failed:\n{result.stdout}\n{result.stderr}"
    return chain_of(cluster, state, result.stdout)


def chain_of(cluster: Cluster, state: Path, stdout: str) -> Chain:
    """The chain whose first job id ends sbatch_longrun's standard output."""
    job_id = stdout.strip().split()[-1]
    chain_id = (state / "jobs" / job_id).read_text().strip()
    return Chain(state, chain_id, job_id, cluster)


# A script that needs two links: the first asks for a new allocation (exit 75), the second ends.
TWO_LINKS = """\
[ "$SLURM_LONGRUN_RESTART_COUNT" -ge 1 ] || exit "$SLURM_LONGRUN_CONTINUE_CODE"
"""


def environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


def assert_verified(folder: Path, timeout: float = 90) -> None:
    """`longrun verify`'s checks pass on the chain (sacct may take a moment to record ends)."""
    reports = []

    def clean() -> bool:
        nonlocal reports
        reports = verify(ChainFolder(folder))
        return all(report.ok for report in reports)

    try:
        wait_for(clean, timeout=timeout, interval=2, what=f"longrun verify of {folder.name}")
    except WaitTimeout:
        raise AssertionError([r.problems for r in reports if not r.ok]) from None


# Watchers in tests poll faster than the defaults, so that a test does not wait 30 s for each look.
WATCH_FAST = {
    "LONGRUN_WATCH_RUNNING_SECONDS": "1",
    "LONGRUN_WATCH_WAITING_SECONDS": "1",
    "LONGRUN_WATCH_LOG_SECONDS": "0.3",
    "LONGRUN_WATCH_SETTLE_SECONDS": "1",
}


def slurm_epoch_of(text: str) -> int:
    epoch = slurm_epoch(text)
    assert epoch is not None, f"not a Slurm time: {text!r}"
    return epoch


def assert_invariants(chain: Chain) -> None:
    """The promises, checked after the chain ended: no two links overlapped in time (from
    Slurm's accounting), the chain ended once, and its recorded end is that one end."""
    assert_one_body_at_a_time(chain)
    assert_verified(chain.folder)
    ends = chain.events("chain_ended")
    assert len(ends) == 1, ends
    assert chain.ended() == ends[0]["state"]


def assert_one_body_at_a_time(chain: Chain) -> None:
    """No two links of the chain ran their jobs at overlapping times (Slurm's accounting)."""
    spans = []
    for job in chain.links():
        record = wait_for(
            lambda job=job: (r := sacct_record(job)) and slurm_epoch(r.end) is not None and r,
            timeout=60,
            what=f"sacct to record the end of job {job}",
        )
        spans.append((slurm_epoch_of(record.start), slurm_epoch_of(record.end), job))
    spans.sort()
    for (_, end, job), (start, _, other) in zip(spans, spans[1:]):
        assert end <= start, f"jobs {job} and {other} of one chain overlapped in time"
