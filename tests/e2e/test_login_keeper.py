"""Sites whose compute nodes may not submit, on the local cluster: every sbatch run from inside
a job is refused in Slurm's exact words (tests/faults: a partition whose AllocNodes leaves out
the host the jobs run on is not possible on one machine), and the chains go on with a keeper
on the "login node": the foreground watcher, a detached one, or cron running `longrun keeper
--once` every minute. README: Sites that forbid submission from compute nodes."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaintest import (
    TWO_LINKS,
    WATCH_FAST,
    Chain,
    assert_invariants,
    chain_of,
    command,
    run_cli,
    submit_chain,
)
from faulttest import Faults
from slurmtest import Cluster

pytestmark = pytest.mark.slurm

DENIED = "sbatch: error: Batch job submission failed: Access/permission denied"

THREE_LINKS = """#!/bin/bash
#SBATCH -o out.txt
echo "body $SLURM_LONGRUN_RESTART_COUNT $SLURM_JOB_ID"
sleep 2
[ "$SLURM_LONGRUN_RESTART_COUNT" -ge 2 ] || exit "$SLURM_LONGRUN_CONTINUE_CODE"
"""


def denied_in_jobs(faults: Faults) -> list[str]:
    """The sbatch calls made from inside jobs (all refused)."""
    return [call.args for call in faults.calls("sbatch") if call.mode == "deny"]


def kept_by(chain: Chain) -> list[str]:
    """Who queued each successor: the keeper's events (a repair counts as the keeper's too)."""
    queued = [e for e in chain.events("successor_queued") if e.get("by")]
    return [str(e["by"]) for e in queued] + ["repair" for _ in chain.events("repaired")]


def watched(
    cluster: Cluster, tmp_path: Path, script: str, *wrapper: str, sbatch: tuple[str, ...] = ()
) -> tuple[Faults, Chain]:
    """Submit `script` with sbatch_longrun (its watcher in the foreground unless `wrapper`
    says otherwise) on a cluster whose jobs may not submit; the faults and the chain."""
    faults = Faults(tmp_path)
    faults.deny_submission_from_jobs()
    (tmp_path / "job.sh").write_text(script)
    result = run_cli(
        "sbatch_longrun", *wrapper, "--state-dir", str(tmp_path / "state"), "-p", "multi",
        *sbatch, "job.sh", cwd=tmp_path, env=faults.env(**WATCH_FAST), timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return faults, chain_of(cluster, tmp_path / "state", result.stdout.splitlines()[0])


def test_the_foreground_watcher_keeps_a_chain_whose_nodes_may_not_submit(
    cluster: Cluster, tmp_path: Path
) -> None:
    faults, chain = watched(cluster, tmp_path, THREE_LINKS)
    assert chain.wait_end() == "COMPLETED"
    assert len(chain.links()) == 3
    # Detected by the first link, in Slurm's words; later links never try (--submit-from=login).
    (refused,) = chain.events("submit_refused")
    assert refused["error"] == DENIED and refused["job"] == chain.first_job
    assert len(denied_in_jobs(faults)) == 1
    # Every link asks for its successor at its start (the last one's is cancelled at its end).
    assert len(chain.events("successor_requested")) == 3
    assert kept_by(chain)[:2] == ["watcher", "watcher"]
    out = (tmp_path / "out.txt").read_text()
    assert "this cluster refuses submissions from compute nodes" in out
    assert_invariants(chain)


def test_a_detached_watcher_keeps_a_chain_submitted_from_login(
    cluster: Cluster, tmp_path: Path
) -> None:
    faults, chain = watched(cluster, tmp_path, THREE_LINKS, "--detached", "--submit-from=login")
    assert chain.wait_end() == "COMPLETED"
    assert len(chain.links()) == 3
    assert denied_in_jobs(faults) == []  # --submit-from=login: no link ever tried
    assert chain.events("submit_refused") == []
    assert kept_by(chain)[:2] == ["watcher", "watcher"]
    assert_invariants(chain)


def test_the_elements_of_an_array_are_kept_each_on_its_own(
    cluster: Cluster, tmp_path: Path
) -> None:
    script = "#!/bin/bash\n#SBATCH -o out_%a.txt\nsleep 3\n" + TWO_LINKS
    _, chain = watched(cluster, tmp_path, script, sbatch=("-a", "1-2"))
    # Each element's first link found out for itself; each later link was kept for its element.
    assert len(chain.events("submit_refused")) == 2
    continued = {str(e["previous"]) for e in chain.events("link_started") if e.get("previous")}
    requested = {str(e["job"]) for e in chain.events("successor_requested")}
    assert len(continued) == 2 and continued <= requested
    assert set(kept_by(chain)) == {"watcher"}
    for element in (1, 2):
        lines = (tmp_path / f"out_{element}.txt").read_text()
        assert lines.count("successor is left to a keeper") >= 1


def test_status_says_what_a_chain_without_a_keeper_waits_for(
    cluster: Cluster, tmp_path: Path
) -> None:
    faults = Faults(tmp_path)
    faults.deny_submission_from_jobs()
    script = "#!/bin/bash\n#SBATCH -o out.txt\nwhile [ ! -e go ]; do sleep 0.2; done\n"
    chain = submit_chain(cluster, tmp_path, script, "-p", "multi", env=faults.env())
    chain.wait_event("successor_requested")
    status = run_cli(
        "longrun", "status", chain.chain_id, "--state-dir", str(chain.state_dir), cwd=tmp_path
    )
    assert f"refuses submissions from compute nodes: {DENIED}" in status.stdout
    assert "waits for a keeper on a login node: run `longrun keeper`" in status.stdout
    # One pass of the keeper queues it; the chain ends when the script does.
    once = run_cli("longrun", "keeper", "--once", "--state-dir", str(chain.state_dir), cwd=tmp_path)
    assert once.returncode == 0 and "queued job" in once.stdout, once.stdout + once.stderr
    (tmp_path / "go").touch()
    assert chain.wait_end() == "COMPLETED"
    assert kept_by(chain) == ["keeper"]
    assert_invariants(chain)


@pytest.fixture
def cron(tmp_path: Path) -> Iterator[None]:
    """Debian's cron daemon, running: started here (and stopped by its pid) unless it runs."""
    daemon = shutil.which("cron")
    if daemon is None:  # tests/run.sh installs it: without it the test fails, never skips
        pytest.fail("cron is not installed (apt-get install cron)")
    pid_file = Path("/run/crond.pid")
    running = pid_file.exists() and Path(f"/proc/{pid_file.read_text().strip()}").exists()
    process = None if running else subprocess.Popen([daemon, "-f"], stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def test_a_crontab_keeper_alone_carries_a_chain_through_two_time_limits(
    cluster: Cluster, tmp_path: Path, cron: None
) -> None:
    faults = Faults(tmp_path)
    faults.deny_submission_from_jobs()
    script = """#!/bin/bash
#SBATCH -o out.txt
#SBATCH --time=1
echo "body $SLURM_LONGRUN_RESTART_COUNT $SLURM_JOB_ID"
[ "$SLURM_LONGRUN_RESTART_COUNT" -ge 2 ] && exit 0
sleep 600
"""
    chain = submit_chain(cluster, tmp_path, script, "-p", "multi", env=faults.env())
    state = str(chain.state_dir)
    # The test's own PATH (the real sbatch, not the wrappers the jobs get) goes into the line.
    installed = run_cli("longrun", "keeper", "--install", "--state-dir", state, cwd=tmp_path)
    assert installed.returncode == 0 and "installed" in installed.stdout, installed.stderr
    try:
        crontab = subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout
        assert f"{command('longrun')} keeper --once --state-dir {state}" in crontab
        assert chain.wait_end(timeout=420) == "COMPLETED"
    finally:
        removed = run_cli("longrun", "keeper", "--uninstall", "--state-dir", state, cwd=tmp_path)
        assert "removed" in removed.stdout
    assert (
        "--state-dir " + state
        not in subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout
    )
    links = chain.links()
    assert len(links) == 3
    verdicts = [e["verdict"] for e in chain.events("verdict")]
    assert verdicts[:2] == ["interrupted", "interrupted"] and verdicts[2] == "completed"
    # Two successors continued the work; the last link's own, if cron queued it in time, was
    # cancelled at its end.
    assert set(kept_by(chain)) <= {"keeper", "repair"} and len(kept_by(chain)) >= 2
    assert len(denied_in_jobs(faults)) == 1  # the first link found out; then it was known
    assert (chain.state_dir / "keeper.log").exists()
    assert_invariants(chain)
