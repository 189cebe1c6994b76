"""When Slurm is slow, silent or says no (issue 19), on the local cluster: no answer is never an
end, a link uses what it knows before it asks, a SIGTERM ends any wait with a successor in
place, a user's cancel wins and is seen at once, signals reach the script as under plain sbatch,
and a full chain folder is said, never taken for a lost claim. Faults are real where the cluster
can make them (a time limit, preemption, scancel, scontrol requeue, a full tmpfs) and injected
by the wrappers of tests/faults where it cannot (slurmctld and slurmdbd not answering the job).
Each test checks the invariants afterwards. The same steps without a cluster:
tests/unit/test_link_answers.py.
"""

from __future__ import annotations

import contextlib
import errno
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaintest import Chain, assert_invariants, assert_one_body_at_a_time, run_cli, submit_chain
from faulttest import Faults
from longrun import slurm
from slurmtest import Cluster, sacct_record, wait_for

pytestmark = pytest.mark.slurm

MARK = 'echo "start $SLURM_JOB_ID $SLURM_LONGRUN_RESTART_COUNT $(date +%s.%N)" >> bodies.log'


def submit(
    cluster: Cluster, tmp_path: Path, faults: Faults, script: str, *args: str, **settings: str
) -> Chain:
    return submit_chain(cluster, tmp_path, script, *args, env=faults.env(**settings))


def link_events(chain: Chain, job: str, kind: str) -> list[dict]:
    return [e for e in chain.events(kind) if e["job"] == job]


# A workload of 100 one-second steps that resumes from its checkpoint (the file `step`): a step
# is logged before it is recorded as done, so a step may be logged twice, never skipped. The
# checkpoint is replaced whole by rename, as a real one must be: a time limit that killed
# `echo > step` between its truncation and its write once left it empty (24.11, under load).
STEPS = f"""#!/bin/bash
#SBATCH -o out.txt
#SBATCH --time=1
{MARK}
n=$(cat step 2>/dev/null || echo 0)
while [ "$n" -lt 100 ]; do
  n=$((n + 1)); echo "step $n $SLURM_JOB_ID" >> steps.log; echo "$n" > step.new; mv step.new step; sleep 1
done
"""


def test_a_time_limit_while_slurm_answers_nothing_continues_the_chain(
    cluster: Cluster, tmp_path: Path
) -> None:
    # From 20 s into link 1 until link 2 has judged, every scontrol and sacct of the chain
    # fails: link 1's SIGTERM at its end time is a time limit all the same, and link 2 waits for
    # an answer, then runs: no answer is never an end (measured before: ended CANCELLED).
    faults = Faults(tmp_path)
    chain = submit(
        cluster, tmp_path, faults, STEPS, LONGRUN_ANSWER_SECONDS="10", LONGRUN_JUDGE_SECONDS="10"
    )
    first = chain.wait_link_running(0)
    chain.wait_event("successor_queued")
    wait_for(lambda: (tmp_path / "step").exists(), timeout=30, what="the first step")
    faults.arm("scontrol", "fail 10000")
    faults.arm("sacct", "fail 10000")
    chain.wait_event("waiting", timeout=180)
    status = run_cli(
        "longrun", "status", chain.chain_id, "--state-dir", str(chain.state_dir), cwd=tmp_path
    )
    assert f"s for Slurm's answer about job {first} (how it ended)" in status.stdout
    (judged,) = chain.wait_event("judged", timeout=180)
    faults.clear("scontrol")
    faults.clear("sacct")
    assert chain.wait_end(timeout=240) == "COMPLETED"
    (sigterm,) = link_events(chain, first, "sigterm")
    assert (sigterm["cause"], sigterm["verdict"], sigterm["answered"]) == (
        "TimeLimit", "interrupted", "0",
    )  # fmt: skip
    assert (judged["answer"], judged["outcome"]) == ("none", "run")
    second = judged["job"]
    (waiting,) = link_events(chain, second, "waiting")
    assert (waiting["about"], waiting["question"]) == (first, "how it ended")
    assert sacct_record(first).state == "TIMEOUT"
    assert chain.body_runs() == [first, second]
    steps = [int(line.split()[1]) for line in (tmp_path / "steps.log").read_text().splitlines()]
    assert sorted(set(steps)) == list(range(1, 101)), "the work was not done"
    assert len(steps) - len(set(steps)) <= 1, "steps were done again"
    assert_invariants(chain)


WAIT_THEN_END = f"""#!/bin/bash
#SBATCH -o out.txt
{MARK}
if [ "$SLURM_LONGRUN_RESTART_COUNT" = 0 ]; then
  while [ ! -e go ]; do sleep 0.2; done
  exit "$SLURM_LONGRUN_CONTINUE_CODE"
fi
"""


@pytest.mark.disruptive
def test_a_sigterm_while_the_link_waits_for_an_answer_leaves_a_successor(
    cluster: Cluster, tmp_path: Path
) -> None:
    # Link 1 is killed without a verdict (SIGKILL to its batch shell) while slurmctld and the
    # accounting do not answer: link 2 waits for them (up to 300 s) and is preempted meanwhile.
    # The SIGTERM ends the wait, a successor is queued, and it continues (measured before: the
    # events stopped at `sigterm` and the chain stalled).
    faults = Faults(tmp_path)
    chain = submit(
        cluster, tmp_path, faults, WAIT_THEN_END, LONGRUN_ANSWER_SECONDS="300",
        LONGRUN_JUDGE_SECONDS="300",
    )  # fmt: skip
    first = chain.wait_link_running(0)
    second = str(chain.wait_event("successor_queued")[0]["successor"])
    faults.arm("scontrol", "fail 10000")
    faults.arm("sacct", "fail 10000")
    slurm.run(["scancel", "--batch", "--signal=KILL", first])
    wait_for(lambda: link_events(chain, second, "waiting"), timeout=120, what="link 2 to wait")
    cluster.preempt(second)
    wait_for(
        lambda: link_events(chain, second, "successor_queued"),
        timeout=60,
        what="link 2 to queue its successor at the SIGTERM",
    )
    faults.clear("scontrol")
    faults.clear("sacct")
    assert chain.wait_end(timeout=240) == "COMPLETED"
    (sigterm,) = link_events(chain, second, "sigterm")
    assert sigterm["answered"] == "0"
    (judged,) = link_events(chain, second, "judged")
    assert judged["answer"] == "none"
    assert link_events(chain, second, "body_skipped")
    third = str(link_events(chain, second, "successor_queued")[0]["successor"])
    assert chain.body_runs() == [first, third]
    assert_invariants(chain)


REQUEUED = f"""#!/bin/bash
#SBATCH -o out.txt
#SBATCH --requeue
{MARK}
case $SLURM_LONGRUN_RESTART_COUNT in
  0) while :; do sleep 0.2; done ;;
  1) while [ ! -e go ]; do sleep 0.2; done ;;
esac
"""


def test_a_requeued_link_keeps_its_judgement_when_slurm_forgot_the_link_before(
    cluster: Cluster, tmp_path: Path
) -> None:
    # Link 1 is stopped from outside (its verdict: terminated); link 2 judges it from Slurm's
    # record and runs. Then Slurm forgets link 1 and requeues link 2: its second run keeps the
    # judgement of its first (measured before: it judged again and ended the chain CANCELLED).
    faults = Faults(tmp_path)
    chain = submit(cluster, tmp_path, faults, REQUEUED)
    first = chain.wait_link_running(0)
    slurm.run(["scancel", "--batch", "--signal=TERM", first])
    second = chain.wait_link_running(1)
    assert link_events(chain, first, "verdict")[0]["verdict"] == "terminated"
    faults.arm("scontrol", f"forget 10000 {first}")
    faults.arm("sacct", f"forget 10000 {first}")
    slurm.run(["scontrol", "requeue", second])
    kept = wait_for(
        lambda: [e for e in link_events(chain, second, "judged") if e.get("kept") == "1"],
        timeout=180,
        what="the requeued link 2 to run again",
    )
    assert kept[0]["outcome"] == "run"
    wait_for(
        lambda: len(link_events(chain, second, "body_started")) == 2,
        timeout=60,
        what="link 2's second run to start the script",
    )
    (tmp_path / "go").touch()
    assert chain.wait_end() == "COMPLETED"
    assert chain.body_runs() == [first, second, second]
    assert_invariants(chain)


def test_scancel_of_a_running_link_ends_the_chain_at_once(cluster: Cluster, tmp_path: Path) -> None:
    # The link's SIGTERM handler sees the cancel (COMPLETING, Reason=None, its own Restarts,
    # before its time limit) and ends the chain; the queued successor never starts (measured
    # before: it stayed PENDING for a free node, then started only to record the end).
    faults = Faults(tmp_path)
    chain = submit(cluster, tmp_path, faults, WAIT_THEN_END, "--time=30")
    first = chain.wait_link_running(0)
    successor = str(chain.wait_event("successor_queued")[0]["successor"])
    cluster.cancel(first)
    assert chain.wait_end(timeout=60) == "CANCELLED"
    (ended,) = chain.events("chain_ended")
    assert ended["job"] == first and "cancelled while it ran" in ended["reason"]
    assert [e["successor"] for e in link_events(chain, first, "successor_cancelled")] == [successor]
    assert not [e for e in chain.events("link_started") if e["job"] == successor]
    assert sacct_record(successor).state.startswith("CANCELLED")
    assert_invariants(chain)


SHORT_THEN_WAIT = f"""#!/bin/bash
#SBATCH -o out.txt
{MARK}
[ "$SLURM_LONGRUN_RESTART_COUNT" -lt 2 ] && exit "$SLURM_LONGRUN_CONTINUE_CODE"
if [ "$SLURM_LONGRUN_RESTART_COUNT" = 2 ]; then
  while [ ! -e go ]; do sleep 0.2; done
  exit "$SLURM_LONGRUN_CONTINUE_CODE"
fi
"""


def test_a_cancel_after_the_continue_verdict_wins(cluster: Cluster, tmp_path: Path) -> None:
    # Link 3 has written its verdict (continue) and holds its successor back (the third short
    # link in a row), its scontrol held by the wrapper: scancel lands now. The successor reads
    # CANCELLED in Slurm's record and ends the chain (before: `continue` came first, it ran).
    faults = Faults(tmp_path)
    chain = submit(cluster, tmp_path, faults, SHORT_THEN_WAIT, LONGRUN_BACKOFF_SECONDS="1")
    third = chain.wait_link_running(2)
    faults.arm("scontrol", "pass 1", "block 1")  # its look at itself, then the back-off
    (tmp_path / "go").touch()
    wait_for(lambda: link_events(chain, third, "verdict"), timeout=60, what="link 3's verdict")
    wait_for(
        lambda: [c for c in faults.calls("scontrol") if c.mode == "block"],
        timeout=30,
        what="the back-off's scontrol",
    )
    assert link_events(chain, third, "verdict")[0]["verdict"] == "continue"
    cluster.cancel(third)
    try:
        assert chain.wait_end() == "CANCELLED"
    finally:
        faults.release()
    fourth = [e for e in chain.events("judged") if e["previous"] == third]
    assert [(e["verdict"], e["slurm_state"], e["outcome"]) for e in fourth] == [
        ("continue", "CANCELLED", "end:CANCELLED")
    ]
    assert len(chain.body_runs()) == 3
    assert_invariants(chain)


TRAPS = f"""#!/bin/bash
#SBATCH -o out.txt
{MARK}
trap 'echo USR2 >> got' USR2
trap 'echo HUP >> got' HUP
echo ready
while [ ! -e go ]; do sleep 0.2; done
"""


def test_signals_to_the_batch_shell_reach_the_script_as_under_plain_sbatch(
    cluster: Cluster, tmp_path: Path
) -> None:
    # `scancel --batch --signal=USR2` ("checkpoint now"), then HUP: the script's own traps get
    # them and it carries on (measured before: the link shell died with 140). A script without
    # a trap ends as a plain job does: FAILED, in Slurm's record and the chain's.
    faults = Faults(tmp_path)
    trapped = submit(cluster, tmp_path / "trapped", faults, TRAPS)
    plain = submit(cluster, tmp_path / "plain", faults, TRAPS.replace("trap ", ": "))
    jobs = {}
    for chain, where in ((trapped, tmp_path / "trapped"), (plain, tmp_path / "plain")):
        jobs[where.name] = chain.wait_link_running(0)
        cluster.wait_file(where / "out.txt", "ready")
    for signal in ("USR2", "HUP"):
        slurm.run(["scancel", "--batch", f"--signal={signal}", jobs["trapped"]])
        wait_for(
            lambda signal=signal: signal in _read(tmp_path / "trapped" / "got"),
            timeout=30,
            what=f"the script to get {signal}",
        )
    slurm.run(["scancel", "--batch", "--signal=USR2", jobs["plain"]])
    (tmp_path / "trapped" / "go").touch()
    assert trapped.wait_end() == "COMPLETED"
    assert (tmp_path / "trapped" / "got").read_text() == "USR2\nHUP\n"
    assert sacct_record(jobs["trapped"]).state == "COMPLETED"
    assert plain.wait_end() == "FAILED"
    (verdict,) = link_events(plain, jobs["plain"], "verdict")
    assert "SIGUSR2" in verdict["reason"]
    assert sacct_record(jobs["plain"]).state == "FAILED"
    assert_invariants(trapped)
    assert_invariants(plain)


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


@contextlib.contextmanager
def small_file_system(where: Path) -> Iterator[Path]:
    """A tmpfs of 4 MiB and 300 inodes mounted at `where` (a state directory of its own)."""
    where.mkdir(parents=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,nr_inodes=300,mode=0700", "longrun-test", where],
        check=True,
    )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", where], check=False)


def fill(folder: Path) -> None:
    """Use every inode and every block of the file system `folder` is on."""
    folder.mkdir()
    number = 0
    while True:
        try:
            (folder / str(number)).touch()
        except OSError as error:
            assert error.errno == errno.ENOSPC, error
            break
        number += 1
    with contextlib.suppress(OSError), open(folder / "0", "wb") as handle:
        while True:
            handle.write(b"\0" * (1 << 16))
            handle.flush()


def test_a_full_chain_folder_is_said_and_never_taken_for_a_lost_claim(
    cluster: Cluster, tmp_path: Path
) -> None:
    # The chain folder's file system fills up while link 1 runs. Link 2 cannot create its
    # claim: it asks again, then says why in the job log and runs nothing (measured before: it
    # took the failure for a lost claim and exited 0 without a word); `longrun status` says the
    # folder is full.
    faults = Faults(tmp_path)
    with small_file_system(tmp_path / "state") as state:
        chain = submit(cluster, tmp_path, faults, WAIT_THEN_END)
        first = chain.wait_link_running(0)
        second = str(chain.wait_event("successor_queued")[0]["successor"])
        (chain.folder / "links" / second).mkdir(mode=0o700)  # so that the claim is what fails
        fill(state / "filler")
        (tmp_path / "go").touch()
        record = wait_for(
            lambda: (r := sacct_record(second)) and r.state not in ("PENDING", "RUNNING") and r,
            timeout=180,
            what="link 2 to end",
        )
        assert record.state == "FAILED"
        log = (tmp_path / "out.txt").read_text()
        assert f"cannot claim job {first} in the chain folder" in log
        assert "No space left on device" in log
        assert "already continues" not in log
        status = run_cli(
            "longrun", "status", chain.chain_id, "--json", "--state-dir", str(state), cwd=tmp_path
        )
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["folder_problem"].endswith(" is full")
        text = run_cli("longrun", "status", chain.chain_id, "--state-dir", str(state), cwd=tmp_path)
        assert "Warning: the file system of" in text.stdout
        assert chain.body_runs() == [first]
        assert not chain.events("claim_lost")
        assert_one_body_at_a_time(chain)


def test_a_refused_successor_starts_the_script_at_once_and_is_queued_while_it_runs(
    cluster: Cluster, tmp_path: Path
) -> None:
    # sbatch refuses the successor twice with a QOS submit limit's words (injected: the local
    # cluster enforces no limits): the script starts at once and the successor is queued while
    # it runs (measured before: the script started 302 s late and ran with no successor).
    faults = Faults(tmp_path)
    faults.arm("sbatch", "pass 1", "limit 2")  # the first link's own submission passes
    chain = submit(cluster, tmp_path, faults, WAIT_THEN_END, LONGRUN_REFUSED_RETRY_SECONDS="2")
    first = chain.wait_link_running(0)
    (refused,) = link_events(chain, first, "successor_refused")
    assert "QOSMaxSubmitJobPerUserLimit" in refused["error"]
    started = float(link_events(chain, first, "link_started")[0]["t"])
    assert float(link_events(chain, first, "body_started")[0]["t"]) - started < 10
    (queued,) = chain.wait_event("successor_queued", timeout=60)
    assert not link_events(chain, first, "body_exited"), "queued only after the script"
    status = run_cli(
        "longrun", "status", chain.chain_id, "--state-dir", str(chain.state_dir), cwd=tmp_path
    )
    assert f"Successor queued: job {queued['successor']}" in status.stdout
    (tmp_path / "go").touch()
    assert chain.wait_end() == "COMPLETED"
    assert chain.body_runs() == [first, str(queued["successor"])]
    assert [c.mode for c in faults.calls("sbatch")][:4] == ["pass", "limit", "limit", "pass"]
    assert_invariants(chain)


TICKS = f"""#!/bin/bash
#SBATCH -o out.txt
#SBATCH -p multi
#SBATCH --no-requeue
{MARK}
while :; do  # (every link ticks at least once)
  echo "tick $SLURM_JOB_ID $(date +%s.%N)" >> ticks.log; sleep 0.5
  [ -e go ] && [ "$SLURM_LONGRUN_RESTART_COUNT" != 0 ] && break
done
"""


@pytest.mark.disruptive
def test_a_node_cut_off_from_slurmctld_never_runs_two_bodies(
    cluster: Cluster, tmp_path: Path
) -> None:
    # The slurmd of link 1's node hangs (SIGSTOP) while the script runs on: slurmctld records
    # NODE_FAIL and releases the successor on the other node. The successor claims link 1 and
    # waits for its heartbeat to stop; link 1 sees the claim at its next beat and stops its
    # script (measured before: both scripts ran side by side for 17 s).
    faults = Faults(tmp_path)
    chain = submit(cluster, tmp_path, faults, TICKS, LONGRUN_HEARTBEAT_SECONDS="2")
    first = chain.wait_link_running(0)
    second = str(chain.wait_event("successor_queued")[0]["successor"])
    (started,) = link_events(chain, first, "link_started")
    with cluster.slurmd_hung(started["node"]):
        assert cluster.wait_final(first, timeout=120) == "NODE_FAIL"
        wait_for(
            lambda: link_events(chain, first, "orphan_stopped"),
            timeout=120,
            what="link 1 to stop its script once link 2 claimed it",
        )
        chain.wait_link_running(1, timeout=120)
        (tmp_path / "go").touch()
        assert chain.wait_end(timeout=180) == "COMPLETED"
    ticks = [line.split() for line in (tmp_path / "ticks.log").read_text().splitlines()]
    last_old = max(float(t) for _, job, t in ticks if job == first)
    first_new = min(float(t) for _, job, t in ticks if job == second)
    assert last_old < first_new, (
        f"two bodies ran at once: {first} until {last_old}, {second} from {first_new}"
    )
    assert link_events(chain, second, "orphan_wait")
    assert chain.body_runs() == [first, second]
    assert chain.ended() == "COMPLETED"
    assert len(chain.events("chain_ended")) == 1
