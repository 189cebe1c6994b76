"""The watcher and the commands on whole chains, on the real cluster.

Watchers here poll faster than the defaults (LONGRUN_WATCH_*_SECONDS), so that a test does not
wait 30 s for each look at the queue.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaintest import WATCH_FAST, Chain, chain_of, command, environment, run_cli, submit_chain
from faulttest import Faults
from longrun.protocol import link_arguments
from longrun.slurm_output import slurm_epoch
from slurmtest import FINAL_STATES, Cluster, wait_for

pytestmark = pytest.mark.slurm

FAST = WATCH_FAST

# Link 0 waits until the test creates `go`, then asks for a new link; link 1 ends the chain.
WAIT_FOR_GO = """#!/bin/bash
#SBATCH -o out.txt
echo "body of link $SLURM_LONGRUN_RESTART_COUNT"
if [ "$SLURM_LONGRUN_RESTART_COUNT" = 0 ]; then
  while [ ! -e go ]; do sleep 0.2; done
  exit "$SLURM_LONGRUN_CONTINUE_CODE"
fi
"""


def alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting for a parent that is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"


def start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [command(args[0]), *args[1:]],
        cwd=cwd,
        env=environment(**FAST),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=as_from_a_terminal,
    )


def as_from_a_terminal() -> None:
    """Ctrl-C reaches the watcher as it does from a terminal, even when the suite runs in the
    background of a script (`.ci/run` runs the 24.11 suite so): such a job starts with SIGINT
    ignored, which Python and everything it starts keep (the watcher then never heard it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Watchers a test starts; any still running at its end are stopped."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def status_json(chain: Chain) -> dict:
    result = run_cli(
        "longrun", "status", chain.first_job, "--json", "--state-dir", str(chain.state_dir),
        cwd=chain.state_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_status_matches_accounting(cluster: Cluster, chain: Chain) -> None:
    """Every link in `longrun status --json` has the job id, state and times sacct has."""
    links = status_json(chain)["links"]
    assert [link["job_id"] for link in links] == chain.links()
    for index, link in enumerate(links):
        record = cluster.wait_sacct(link["job_id"], FINAL_STATES)
        assert link["state"] == record.state
        assert link["start"] == record.start  # Slurm's clock, as the link or its successor saw it
        if index < len(links) - 1:
            assert link["end"] == record.end  # recorded by the next link from Slurm's own clock
        else:
            # The last link's end is its own last event: within a second or two of Slurm's.
            assert abs(slurm_epoch(link["end"]) - slurm_epoch(record.end)) <= 2  # type: ignore[operator]


def test_attached_watcher_reports_a_chain_that_completes_after_a_timeout(
    cluster: Cluster, tmp_path: Path
) -> None:
    script = """#!/bin/bash
#SBATCH --time=1
#SBATCH -o out.txt
if [ "$SLURM_LONGRUN_RESTART_COUNT" = 0 ]; then while true; do sleep 1; done; fi
echo finished
"""
    (tmp_path / "job.sh").write_text(script)
    result = subprocess.run(
        [command("sbatch_longrun"), "--state-dir", "state", "job.sh"],
        cwd=tmp_path, env=environment(**FAST), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    chain = chain_of(cluster, tmp_path / "state", result.stdout.splitlines()[0])
    first, second = chain.links()
    out = result.stdout
    for line in (
        f"Submitted batch job {first}",
        f"Job submitted with ID {first} (link 1/1000)",
        f"Watching job {first} (link 1/1000)",
        f"Job {first} (link 1/1000) ended TIMEOUT: reached its time limit; "
        f"job {second} (link 2/1000) takes over",
        f"Watching job {second} (link 2/1000)",
        f"Job {second} (link 2/1000): the script finished (exit 0)",
        "Chain ended COMPLETED",
        f"Chain {chain.chain_id} COMPLETED: 2 link(s)",
    ):
        assert line in out, f"missing {line!r} in:\n{out}"
    assert chain.queued() == {}
    assert_status_matches_accounting(cluster, chain)


def test_attached_watcher_reports_a_failing_chain_and_exits_non_zero(
    cluster: Cluster, tmp_path: Path
) -> None:
    (tmp_path / "job.sh").write_text("#!/bin/bash\n#SBATCH -o out.txt\nexit 3\n")
    result = subprocess.run(
        [command("sbatch_longrun"), "--state-dir", "state", "job.sh"],
        cwd=tmp_path, env=environment(**FAST), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    chain = chain_of(cluster, tmp_path / "state", result.stdout.splitlines()[0])
    assert f"Job {chain.first_job} (link 1/1000): the script failed (exit 3)" in result.stdout
    assert "Chain ended FAILED: the script failed (exit 3)" in result.stdout
    assert chain.queued() == {}


def test_detached_watcher_logs_to_the_chain_folder_and_exits_when_the_chain_ends(
    cluster: Cluster, tmp_path: Path
) -> None:
    (tmp_path / "job.sh").write_text(WAIT_FOR_GO)
    result = run_cli(
        "sbatch_longrun", "--detached", "--state-dir", "state", "job.sh",
        cwd=tmp_path, env=environment(**FAST),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    chain = chain_of(cluster, tmp_path / "state", lines[0])
    pid = int(
        next(line for line in lines if "Monitor running in background PID:" in line).split()[-1]
    )
    log = chain.folder / "watch.log"
    assert f"Monitor log: {log}" in lines
    assert alive(pid) and os.getsid(pid) == pid, "the watcher must run in its own session"
    chain.wait_link_running(0)
    cluster.wait_file(log, f"Watching job {chain.first_job} (link 1/1000)")
    (tmp_path / "go").touch()
    assert chain.wait_end() == "COMPLETED"
    wait_for(lambda: not alive(pid), timeout=30, what=f"watcher {pid} to exit")
    text = log.read_text()
    assert f"Job submitted with ID {chain.first_job}" in text
    assert f"Chain {chain.chain_id} COMPLETED: 2 link(s)" in text


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGHUP, signal.SIGTERM])
def test_stopping_the_watcher_leaves_the_chain_running_to_the_end(
    cluster: Cluster, tmp_path: Path, processes: list, stop: signal.Signals
) -> None:
    (tmp_path / "job.sh").write_text(WAIT_FOR_GO)
    watcher = start("sbatch_longrun", "--state-dir", "state", "job.sh", cwd=tmp_path)
    processes.append(watcher)
    state = tmp_path / "state"
    wait_for(lambda: list(state.glob("jobs/*")), timeout=30, what="the submission")
    chain = chain_of(cluster, state, next(state.glob("jobs/*")).name)
    chain.wait_link_running(0)
    watcher.send_signal(stop)
    out, _ = watcher.communicate(timeout=30)
    assert watcher.returncode == 130
    assert "the chain goes on without the watcher" in out
    assert f"longrun watch {chain.chain_id}" in out
    assert chain.queued(), "the chain must still be queued after the watcher stopped"
    (tmp_path / "go").touch()
    assert chain.wait_end() == "COMPLETED"
    assert len(chain.links()) == 2


def test_cancel_leaves_nothing_queued_and_is_idempotent(cluster: Cluster, tmp_path: Path) -> None:
    chain = submit_chain(cluster, tmp_path, WAIT_FOR_GO)
    first = chain.wait_link_running(0)
    successor = str(chain.wait_event("successor_queued")[0]["successor"])
    result = run_cli("longrun", "cancel", first, "--state-dir", str(chain.state_dir), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"Chain {chain.chain_id} CANCELLED" in result.stdout
    assert successor in result.stdout and first in result.stdout
    wait_for(lambda: not chain.queued(), timeout=60, what="the chain's jobs to leave the queue")
    assert cluster.wait_sacct(first, {"CANCELLED"}).state == "CANCELLED"
    assert cluster.wait_sacct(successor, {"CANCELLED"}).state == "CANCELLED"
    assert status_json(chain)["state"] == "CANCELLED"
    again = run_cli("longrun", "cancel", chain.chain_id, "--state-dir", str(chain.state_dir), cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0
    assert "had already ended CANCELLED" in again.stdout
    # The successor never ran the script: only link 0 wrote to the output.
    assert (tmp_path / "out.txt").read_text().count("body of link") == 1


def test_cancel_of_a_chain_that_ended_is_harmless(cluster: Cluster, tmp_path: Path) -> None:
    chain = submit_chain(cluster, tmp_path, "#!/bin/bash\n#SBATCH -o out.txt\necho done\n")
    assert chain.wait_end() == "COMPLETED"
    result = run_cli("longrun", "cancel", chain.chain_id, "--state-dir", str(chain.state_dir), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0
    assert "had already ended COMPLETED" in result.stdout
    assert status_json(chain)["state"] == "COMPLETED"


def test_status_and_list_json_match_slurms_accounting(cluster: Cluster, tmp_path: Path) -> None:
    script = """#!/bin/bash
#SBATCH -o out.txt
sleep 1
[ "$SLURM_LONGRUN_RESTART_COUNT" -ge 2 ] || exit "$SLURM_LONGRUN_CONTINUE_CODE"
"""
    chain = submit_chain(cluster, tmp_path, script, "-J", "accounted")
    assert chain.wait_end() == "COMPLETED"
    assert len(chain.links()) == 3
    assert_status_matches_accounting(cluster, chain)
    result = run_cli("longrun", "list", "--json", "--state-dir", str(chain.state_dir), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["chain_id"] == chain.chain_id and row["job_name"] == "accounted"
    assert (row["state"], row["links"], row["current_job"]) == ("COMPLETED", 3, chain.links()[-1])
    live = run_cli("longrun", "list", "--live", "--json", "--state-dir", str(chain.state_dir), cwd=tmp_path)  # fmt: skip
    assert json.loads(live.stdout) == []


def test_status_of_a_running_chain(cluster: Cluster, tmp_path: Path) -> None:
    chain = submit_chain(cluster, tmp_path, WAIT_FOR_GO)
    first = chain.wait_link_running(0)
    successor = str(chain.wait_event("successor_queued")[0]["successor"])
    status = status_json(chain)
    assert status["state"] == "RUNNING" and status["current_job"] == first
    assert status["successor_job"] == successor
    assert [(link["job_id"], link["state"]) for link in status["links"]] == [(first, "RUNNING")]
    text = run_cli("longrun", "status", "--state-dir", str(chain.state_dir), cwd=tmp_path).stdout
    assert f"Chain {chain.chain_id} (job.sh): RUNNING" in text
    assert f"Successor queued: job {successor}" in text
    (tmp_path / "go").touch()
    assert chain.wait_end() == "COMPLETED"


@pytest.mark.parametrize("built_by", ["link", "watcher"])
def test_watchers_repair_a_missing_successor_exactly_once(
    cluster: Cluster, tmp_path: Path, processes: list, built_by: str
) -> None:
    # The link's sbatch fails until it gives up (Slurm said there was no such job each time):
    # nothing follows it unless a watcher repairs the chain. It submits the command the link
    # built; without one (a link killed before it built its successor), one of its own.
    faults = Faults(tmp_path)
    faults.arm("sbatch", "pass 1", "fail 100")
    env = faults.env(LONGRUN_SUBMIT_RETRY_SECONDS="3")
    chain = submit_chain(cluster, tmp_path, WAIT_FOR_GO, env=env)
    first = chain.wait_link_running(0)
    chain.wait_event("successor_failed")
    faults.clear("sbatch")
    command = chain.folder / "links" / first / "command"
    assert command.is_file()
    if built_by == "watcher":
        command.unlink()
    # Two watchers at once: still only one successor may be submitted.
    for _ in range(2):
        processes.append(
            start("longrun", "watch", chain.chain_id, "--state-dir", str(chain.state_dir), cwd=tmp_path)
        )  # fmt: skip
    (tmp_path / "go").touch()
    assert chain.wait_end(timeout=120) == "COMPLETED"
    repaired = chain.events("repaired")
    assert len(repaired) == 1, repaired
    assert repaired[0]["job"] == first and repaired[0]["built_by"] == built_by
    assert chain.links() == [first, repaired[0]["successor"]]
    for watcher in processes:
        out, _ = watcher.communicate(timeout=30)
        assert watcher.returncode == 0
        assert (
            f"Successor of job {first} was missing: submitted job {repaired[0]['successor']}" in out
        )


def test_watcher_cancels_a_link_started_beyond_max_restarts(
    cluster: Cluster, tmp_path: Path, processes: list
) -> None:
    # Every link waits for `go`: the rogue link below runs until the watcher cancels it.
    script = "#!/bin/bash\n#SBATCH -o out.txt\nwhile [ ! -e go ]; do sleep 0.2; done\nexit 75\n"
    chain = submit_chain(cluster, tmp_path, script, wrapper=["--max-restarts", "0"])
    first = chain.wait_link_running(0)
    processes.append(
        start("longrun", "watch", chain.chain_id, "--state-dir", str(chain.state_dir), cwd=tmp_path)
    )  # fmt: skip
    # A link that should never exist: restart count 1 with --max-restarts 0.
    beyond = cluster.sbatch(str(chain.folder / "link.sh"), *link_arguments(1, first), cwd=tmp_path)
    assert cluster.wait_final(beyond, timeout=60) == "CANCELLED"
    (event,) = chain.events("cancelled_beyond_max")
    assert (event["job"], event["max_restarts"]) == (beyond, 0)
    (tmp_path / "go").touch()
    assert chain.wait_end() == "MAX_RESTARTS"
