"""The chain on the real local cluster: continuation, end states, signals, environment."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from chaintest import Chain, assert_invariants, environment, submit_chain
from faulttest import Faults
from longrun import slurm
from longrun.protocol import link_arguments
from slurmtest import Cluster

pytestmark = pytest.mark.slurm

TRAIN = Path(__file__).resolve().parents[2] / "example" / "train.py"


class MaxRunning:
    """Samples the queue in the background: the most links of one chain ever running at once.
    A sampler that failed or never looked fails the test (it would prove nothing)."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.most = 0
        self.samples = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                running = [
                    s for s in self.chain.queued().values() if s in ("RUNNING", "COMPLETING")
                ]
                self.most = max(self.most, len(running))
                self.samples += 1
                time.sleep(0.5)
        except BaseException as exc:  # handed to the test by stop()
            self.error = exc

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        if self.error is not None:
            raise AssertionError(f"the queue sampler failed: {self.error!r}") from self.error
        assert self.samples > 0, "the queue sampler never looked"
        return self.most


def test_three_timeouts_resume_from_checkpoint_and_finish_once(
    cluster: Cluster, tmp_path: Path
) -> None:
    script = f"""#!/bin/bash
#SBATCH --time=1
#SBATCH --output=chain.out
echo "link=$SLURM_LONGRUN_RESTART_COUNT initial=$SLURM_LONGRUN_INITIAL_JOB_ID job=$SLURM_JOB_ID"
exec python3 {TRAIN} --steps 100 --max-steps-per-link 40 --step-seconds 0.5 \\
    --checkpoint ckpt.json --result result.txt
"""
    chain = submit_chain(cluster, tmp_path, script)
    assert chain.wait_end(timeout=480) == "COMPLETED"

    links = chain.links()
    assert len(links) == 3
    assert (tmp_path / "result.txt").read_text() == "finished 100 steps in link 2\n"
    out = (tmp_path / "chain.out").read_text()
    for index, job in enumerate(links):
        assert f"link={index} initial={links[0]} job={job}" in out
    assert "resuming at step 40 of 100" in out and "resuming at step 80 of 100" in out
    states = [cluster.wait_sacct(job, {"TIMEOUT", "COMPLETED"}).state for job in links]
    assert states == ["TIMEOUT", "TIMEOUT", "COMPLETED"]
    assert chain.queued() == {}


@pytest.mark.disruptive
def test_preempted_link_continues(cluster: Cluster, tmp_path: Path) -> None:
    # No srun: Slurm signals no step during the GraceTime and records PREEMPTED.
    script = """#!/bin/bash
#SBATCH -p main
#SBATCH -o out.txt
if [ "$SLURM_LONGRUN_RESTART_COUNT" -ge 1 ]; then echo "link 1 ran after $SLURM_LONGRUN_PREVIOUS_STATE"; exit 0; fi
trap 'echo "script got TERM"' TERM
while true; do sleep 1; done
"""
    chain = submit_chain(cluster, tmp_path, script)
    first = chain.wait_link_running(0)
    cluster.preempt(first)
    assert chain.wait_end(timeout=180) == "COMPLETED"
    assert cluster.wait_sacct(first, {"PREEMPTED"}).state == "PREEMPTED"
    assert chain.links()[0] == first and len(chain.links()) == 2
    assert "link 1 ran after PREEMPTED" in (tmp_path / "out.txt").read_text()


@pytest.mark.disruptive
def test_preempted_link_whose_srun_exits_in_grace_time_continues(
    cluster: Cluster, tmp_path: Path
) -> None:
    # The step gets SIGTERM at the start of the GraceTime and exits 143; the script then exits
    # by itself, so Slurm 22.05 records FAILED, and only PreemptTime tells it was a preemption.
    # Slurm 24.11 records PREEMPTED. longrun continues the chain on both.
    script = """#!/bin/bash
#SBATCH -p main
#SBATCH -o out.txt
if [ "$SLURM_LONGRUN_RESTART_COUNT" -ge 1 ]; then echo "link 1 ran"; exit 0; fi
srun bash -c 'trap "echo step got TERM; exit 143" TERM; echo step ready; while true; do sleep 0.2; done'
"""
    chain = submit_chain(cluster, tmp_path, script)
    first = chain.wait_link_running(0)
    cluster.wait_file(tmp_path / "out.txt", "step ready")
    cluster.preempt(first)
    assert chain.wait_end(timeout=180) == "COMPLETED"
    record = cluster.wait_sacct(first, {"FAILED", "PREEMPTED", "COMPLETED"})
    assert record.state in {"FAILED", "PREEMPTED"}, record
    if cluster.version == (22, 5):
        assert record.state == "FAILED" and record.exit_code == "15:0", record
    if cluster.version == (24, 11):
        assert record.state == "PREEMPTED" and record.exit_code == "0:0", record
    assert cluster.preempt_time(first) is not None
    recorded = [e for e in chain.events("verdict") if e["job"] == first]
    assert recorded[0]["verdict"] == "continue" and "preempted" in recorded[0]["reason"]
    out = (tmp_path / "out.txt").read_text()
    assert "step got TERM" in out and "link 1 ran" in out


REQUEUED_SCRIPT = """#!/bin/bash
#SBATCH -o out.txt
echo "run: link=$SLURM_LONGRUN_RESTART_COUNT slurm_restarts=${SLURM_RESTART_COUNT:-0}"
if [ "${SLURM_RESTART_COUNT:-0}" -ge 1 ]; then exit 0; fi
while true; do sleep 1; done
"""


def assert_requeued_once_without_second_successor(chain: Chain, tmp_path: Path, most: int) -> None:
    assert most <= 1, "two links of the chain ran at the same time"
    assert len(chain.links()) == 1, "a Slurm requeue must not count as a new link"
    assert len(chain.events("successor_queued")) == 1, "a requeued link submitted a 2nd successor"
    out = (tmp_path / "out.txt").read_text()
    assert "run: link=0 slurm_restarts=0" in out and "run: link=0 slurm_restarts=1" in out
    assert_invariants(chain)


@pytest.mark.disruptive
def test_requeue_preemption_keeps_one_successor(cluster: Cluster, tmp_path: Path) -> None:
    chain = submit_chain(cluster, tmp_path, REQUEUED_SCRIPT, "-p", "requeue")
    sampler = MaxRunning(chain)
    first = chain.wait_link_running(0)
    cluster.preempt(first)
    assert chain.wait_end(timeout=240) == "COMPLETED"
    assert_requeued_once_without_second_successor(chain, tmp_path, sampler.stop())


@pytest.mark.disruptive
def test_node_failure_with_slurm_requeue_keeps_one_successor(
    cluster: Cluster, tmp_path: Path
) -> None:
    chain = submit_chain(cluster, tmp_path, REQUEUED_SCRIPT, "--requeue")
    sampler = MaxRunning(chain)
    first = chain.wait_link_running(0)
    with cluster.node_down():
        cluster.wait_state(first, {"PENDING", "REQUEUED"}, timeout=60)
    assert chain.wait_end(timeout=240) == "COMPLETED"
    assert_requeued_once_without_second_successor(chain, tmp_path, sampler.stop())


@pytest.mark.disruptive
def test_node_fail_without_requeue_continues(cluster: Cluster, tmp_path: Path) -> None:
    script = """#!/bin/bash
#SBATCH -o out.txt
if [ "$SLURM_LONGRUN_RESTART_COUNT" -ge 1 ]; then echo "link 1 ran after $SLURM_LONGRUN_PREVIOUS_STATE"; exit 0; fi
while true; do sleep 1; done
"""
    chain = submit_chain(cluster, tmp_path, script, "--no-requeue")
    first = chain.wait_link_running(0)
    with cluster.node_down():
        assert cluster.wait_final(first, timeout=60) == "NODE_FAIL"
    assert chain.wait_end(timeout=180) == "COMPLETED"
    assert len(chain.links()) == 2
    assert "link 1 ran after NODE_FAIL" in (tmp_path / "out.txt").read_text()


def test_scancel_of_the_running_link_ends_the_chain(cluster: Cluster, tmp_path: Path) -> None:
    script = """#!/bin/bash
#SBATCH -o out.txt
echo "body ran in link $SLURM_LONGRUN_RESTART_COUNT"
while true; do sleep 1; done
"""
    chain = submit_chain(cluster, tmp_path, script)
    first = chain.wait_link_running(0)
    cluster.cancel(first)
    assert chain.wait_end(timeout=120) == "CANCELLED"
    assert (tmp_path / "out.txt").read_text().count("body ran") == 1
    assert cluster.wait_sacct(first, {"CANCELLED"}).state == "CANCELLED"
    successor = str(chain.events("successor_queued")[0]["successor"])
    assert not [e for e in chain.events("body_started") if e["job"] == successor]
    (ended,) = chain.events("chain_ended")
    if ended["job"] == first:
        # The link's SIGTERM handler saw its own cancel (test_slurm_faults.py proves that it
        # does when Slurm shows it) and cancelled its successor, which never started.
        assert "cancelled while it ran" in ended["reason"]
        assert chain.links() == [first]
        assert cluster.wait_sacct(successor, {"CANCELLED"}).state == "CANCELLED"
    else:
        # Slurm ended the batch shell before its handler could ask: the successor judged.
        assert chain.links() == [first, successor]
        judged = next(e for e in chain.events("judged") if e["job"] == successor)
        assert (judged["verdict"], judged["slurm_state"]) == ("terminated", "CANCELLED")


def test_failing_script_ends_the_chain_failed(cluster: Cluster, tmp_path: Path) -> None:
    script = "#!/bin/bash\n#SBATCH -o out.txt\necho failing; exit 3\n"
    chain = submit_chain(cluster, tmp_path, script)
    assert chain.wait_end(timeout=120) == "FAILED"
    record = cluster.wait_sacct(chain.first_job, {"FAILED"})
    assert record.exit_code == "3:0"
    successor = chain.events("successor_queued")[0]["successor"]
    assert cluster.wait_sacct(successor, {"CANCELLED"}).state == "CANCELLED"
    assert chain.queued() == {}


def test_retry_failed_runs_a_failing_link_once_more(cluster: Cluster, tmp_path: Path) -> None:
    script = """#!/bin/bash
#SBATCH -o out.txt
echo "attempt link=$SLURM_LONGRUN_RESTART_COUNT retries=$SLURM_LONGRUN_RETRIES"
exit 1
"""
    chain = submit_chain(cluster, tmp_path, script, wrapper=["--retry-failed", "1"])
    assert chain.wait_end(timeout=120) == "FAILED"
    out = (tmp_path / "out.txt").read_text()
    assert out.count("attempt") == 2
    assert "attempt link=0 retries=0" in out and "attempt link=1 retries=1" in out
    assert chain.queued() == {}


def test_successful_script_leaves_nothing_queued(cluster: Cluster, tmp_path: Path) -> None:
    chain = submit_chain(cluster, tmp_path, "#!/bin/bash\n#SBATCH -o out.txt\necho done\n")
    assert chain.wait_end(timeout=120) == "COMPLETED"
    assert chain.queued() == {}
    assert len(chain.links()) == 1


def test_max_restarts_bounds_the_number_of_links(cluster: Cluster, tmp_path: Path) -> None:
    # The work needs three links (exit 75 asks for a new link) but only one restart is allowed.
    script = """#!/bin/bash
#SBATCH -o out.txt
echo "link $SLURM_LONGRUN_RESTART_COUNT of max $SLURM_LONGRUN_MAX_RESTARTS"
n=$(( $(cat progress 2>/dev/null || echo 0) + 1 )); echo $n > progress
[ $n -ge 3 ] && exit 0
exit $SLURM_LONGRUN_CONTINUE_CODE
"""
    chain = submit_chain(cluster, tmp_path, script, wrapper=["--max-restarts", "1"])
    assert chain.wait_end(timeout=120) == "MAX_RESTARTS"
    assert len(chain.links()) == 2
    assert (tmp_path / "out.txt").read_text().count("of max 1") == 2
    assert chain.queued() == {}


def test_forwarded_signal_goes_to_the_script_alone_when_it_traps_it(
    cluster: Cluster, tmp_path: Path
) -> None:
    # As with plain sbatch and B:, the script's own trap gets the signal; its srun step does
    # not, unless the script passes it on.
    script = """#!/bin/bash
#SBATCH --signal=B:USR1@5
#SBATCH --time=10
#SBATCH -o out.txt
if [ "$SLURM_LONGRUN_RESTART_COUNT" -ge 1 ]; then echo "link 1 ran"; exit 0; fi
trap 'echo "script trap ran"; kill -TERM $step' USR1
srun bash -c 'trap "echo task got USR1; exit 0" USR1; trap "echo task got TERM; exit 0" TERM; echo task ready; while true; do sleep 0.2; done' &
step=$!
wait
wait
"""
    chain = submit_chain(cluster, tmp_path, script)
    first = chain.signal_when_ready(tmp_path, "task ready")
    assert chain.wait_end(timeout=120) == "COMPLETED"
    out = (tmp_path / "out.txt").read_text()
    assert "script trap ran" in out and "link 1 ran" in out
    assert "task got USR1" not in out
    recorded = next(e for e in chain.events("verdict") if e["job"] == first)
    assert recorded["verdict"] == "continue"


def test_each_link_gets_the_submission_environment(cluster: Cluster, tmp_path: Path) -> None:
    script = """#!/bin/bash
#SBATCH -o out.txt
echo "link=$SLURM_LONGRUN_RESTART_COUNT shell=${FROM_SHELL-unset} link1=${FROM_LINK1-unset} cpt=${SLURM_CPUS_PER_TASK-unset}"
export FROM_LINK1=leaked
[ "$SLURM_LONGRUN_RESTART_COUNT" = 0 ] && exit $SLURM_LONGRUN_CONTINUE_CODE
exit 0
"""
    env = environment(FROM_SHELL="multi\nline $(not run) 'q'")
    chain = submit_chain(cluster, tmp_path, script, "--hold", env=env)
    # Start link 0 by hand with -c 2, so that link 0 has SLURM_CPUS_PER_TASK and its successor
    # (submitted without -c) would show it only if the running job's environment leaked.
    cluster.wait_state(chain.first_job, {"PENDING"})
    cluster.cancel(chain.first_job)
    link_script = chain.folder / "link.sh"
    manual = subprocess.run(
        ["sbatch", "--parsable", "-c", "2", str(link_script), *link_arguments(0)],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert chain.wait_end(timeout=120) == "COMPLETED"
    out = (tmp_path / "out.txt").read_text()
    shell = "shell=multi\nline $(not run) 'q'"
    assert f"link=0 {shell} link1=unset cpt=2" in out
    assert f"link=1 {shell} link1=unset cpt=unset" in out
    assert manual in chain.links()


def test_pre_timeout_signal_resubmits_a_missing_successor(cluster: Cluster, tmp_path: Path) -> None:
    script = """#!/bin/bash
#SBATCH -o out.txt
echo "body of link $SLURM_LONGRUN_RESTART_COUNT"
if [ "$SLURM_LONGRUN_RESTART_COUNT" = 0 ]; then
  while [ ! -e go ]; do sleep 0.2; done
  exit "$SLURM_LONGRUN_CONTINUE_CODE"
fi
"""
    # The link's own sbatch fails until it gives up: no successor is queued.
    faults = Faults(tmp_path)
    faults.arm("sbatch", "pass 1", "fail 100")
    env = faults.env(LONGRUN_SUBMIT_RETRY_SECONDS="3")
    chain = submit_chain(cluster, tmp_path, script, env=env)
    first = chain.wait_link_running(0)
    chain.wait_event("successor_failed")
    faults.clear("sbatch")
    # The default check signal (B:USR1) reaches the batch shell, which looks for its successor.
    slurm.run(["scancel", "--batch", "--signal=USR1", first])
    replacement = str(chain.wait_event("successor_queued")[0]["successor"])
    assert not chain.events("signal_forwarded"), "the default check signal is not forwarded"
    (tmp_path / "go").touch()
    assert chain.wait_end() == "COMPLETED"
    assert chain.links() == [first, replacement]
