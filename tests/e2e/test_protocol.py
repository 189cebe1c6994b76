"""The link protocol under Slurm's real failure modes, on the local cluster.

Each test tries to break one promise: at most one body of a chain at a time and exactly one
successor per link; a stop is final; nothing is decided from one failed Slurm call. Faults are
real (preemption, node failure, a slurmctld restart, slurmdbd down, scancel at awkward moments)
or injected by wrappers around Slurm's commands (tests/faults) that fail, hang, or report
failure after really submitting. The invariants are checked from Slurm's own accounting.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from chaintest import (
    Chain,
    assert_invariants,
    environment,
    run_cli,
    slurm_epoch_of,
    submit_chain,
)
from faulttest import Faults
from longrun import slurm
from longrun.chain_actions import repair
from longrun.chain_store import ChainFolder, StateDir
from longrun.protocol import link_arguments
from slurmtest import Cluster, sacct_record, wait_for

pytestmark = pytest.mark.slurm

# The body records each start and end with the job id, so that overlaps can be checked.
MARK = 'echo "start $SLURM_JOB_ID $SLURM_LONGRUN_RESTART_COUNT $(date +%s.%N)" >> bodies.log'
MARK_END = 'echo "end $SLURM_JOB_ID $SLURM_LONGRUN_RESTART_COUNT $(date +%s.%N)" >> bodies.log'


def bodies(workdir: Path) -> list[tuple[str, str, int]]:
    """(kind, job, restart count) of every line the bodies wrote."""
    path = workdir / "bodies.log"
    if not path.exists():
        return []
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return [(kind, job, int(count)) for kind, job, count, _ in rows]


def status_json(chain: Chain, cwd: Path) -> dict:
    result = run_cli(
        "longrun", "status", chain.chain_id, "--json", "--state-dir", str(chain.state_dir), cwd=cwd
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def submit_with_faults(
    cluster: Cluster,
    tmp_path: Path,
    faults: Faults,
    script: str,
    *sbatch_args: str,
    wrapper: tuple[str, ...] = (),
    **settings: str,
) -> Chain:
    return submit_chain(
        cluster, tmp_path, script, *sbatch_args, wrapper=wrapper, env=faults.env(**settings)
    )


WAIT_FOR_GO = f"""#!/bin/bash
#SBATCH -o out.txt
{MARK}
if [ "$SLURM_LONGRUN_RESTART_COUNT" = 0 ]; then
  while [ ! -e go ]; do sleep 0.2; done
  {MARK_END}
  exit "$SLURM_LONGRUN_CONTINUE_CODE"
fi
{MARK_END}
"""


# --- Nothing is decided from one failed Slurm call ------------------------------------------
def test_failed_look_does_not_queue_a_second_successor(cluster: Cluster, tmp_path: Path) -> None:
    faults = Faults(tmp_path)
    chain = submit_with_faults(cluster, tmp_path, faults, WAIT_FOR_GO)
    first = chain.wait_link_running(0)
    successor = str(chain.wait_event("successor_queued")[0]["successor"])
    faults.arm("scontrol", "fail 2")  # both looks at the successor fail
    slurm.run(["scancel", "--batch", "--signal=USR1", first])
    (unchecked,) = chain.wait_event("successor_unchecked")
    assert unchecked["successor"] == successor
    (tmp_path / "go").touch()
    assert chain.wait_end() == "COMPLETED"
    assert [e["job"] for e in chain.events("successor_queued")] == [first, successor]
    assert chain.links() == [first, successor]
    assert [job for kind, job, _ in bodies(tmp_path) if kind == "start"] == [first, successor]
    assert_invariants(chain)


def test_sbatch_that_times_out_after_submitting_is_found_by_its_tag(
    cluster: Cluster, tmp_path: Path
) -> None:
    faults = Faults(tmp_path)
    faults.arm("sbatch", "pass 1", "lie 1")  # the first link's own sbatch, then its successor's
    chain = submit_with_faults(cluster, tmp_path, faults, WAIT_FOR_GO)
    first = chain.wait_link_running(0)
    (found,) = chain.wait_event("successor_found")
    assert [c.mode for c in faults.calls("sbatch")] == ["pass", "lie"]
    (tmp_path / "go").touch()
    assert chain.wait_end() == "COMPLETED"
    assert chain.links() == [first, str(found["successor"])]
    submitted = [e for e in chain.events("successor_queued") if e["job"] == first]
    assert not submitted, "a failed sbatch was retried blindly"
    out = slurm.run(["squeue", "-h", "--me", "-t", "all", "-O", "JobID:|,Comment:|"]).stdout
    tagged = [line for line in out.splitlines() if f"longrun:{chain.chain_id}:1|" in line]
    assert len(tagged) == 1, f"link 2 was queued more than once: {tagged}"
    assert_invariants(chain)


def test_watcher_repair_looks_for_the_tagged_successor_before_submitting(
    cluster: Cluster, tmp_path: Path
) -> None:
    faults = Faults(tmp_path)
    # The successor's sbatch lies and every look for it by its tag fails: the link cannot know
    # that its successor is queued, gives up after 4 s and ends (exit 75) with none recorded.
    faults.arm("sbatch", "pass 1", "lie 1")
    faults.arm("squeue", "fail 100")
    chain = submit_with_faults(
        cluster, tmp_path, faults, WAIT_FOR_GO, LONGRUN_SUBMIT_RETRY_SECONDS="4"
    )
    first = chain.wait_link_running(0)
    chain.wait_event("successor_failed")
    tagged = f"longrun:{chain.chain_id}:2"
    out = slurm.run(["squeue", "-h", "--me", "-O", "JobID:|,Comment:|"]).stdout
    (hidden,) = [
        line.split("|")[0] for line in out.splitlines() if line.rstrip("|").endswith(tagged)
    ]
    slurm.run(["scontrol", "hold", hidden])  # keep it queued while the repair looks
    faults.clear("squeue")
    (tmp_path / "go").touch()
    cluster.wait_final(first)
    folder = ChainFolder(chain.folder)
    assert repair(folder, StateDir(chain.state_dir)) is None
    (found,) = chain.events("successor_found")
    assert (found["job"], found["successor"]) == (first, hidden)
    slurm.run(["scontrol", "release", hidden])
    assert chain.wait_end() == "COMPLETED"
    assert chain.links() == [first, hidden]
    assert not chain.events("repaired")
    assert_invariants(chain)


def test_scancel_with_slurms_record_gone_is_taken_as_a_cancel(
    cluster: Cluster, tmp_path: Path
) -> None:
    # The successor learns that Slurm no longer knows its predecessor (slurmctld forgot it, the
    # accounting has no record): a SIGTERM that showed no time limit, preemption or node
    # failure counts as a cancel. (Had sacct not answered, it would not: tests/unit.)
    faults = Faults(tmp_path)
    chain = submit_with_faults(cluster, tmp_path, faults, WAIT_FOR_GO, LONGRUN_JUDGE_SECONDS="4")
    first = chain.wait_link_running(0)
    successor = str(chain.wait_event("successor_queued")[0]["successor"])
    faults.arm("scontrol", "invalid 100")
    faults.arm("sacct", "empty 100")
    cluster.cancel(first)
    assert chain.wait_end() == "CANCELLED"
    judged = next(e for e in chain.events("judged") if e["job"] == successor)
    assert (judged["verdict"], judged["slurm_state"]) == ("terminated", "unknown")
    assert judged["answer"] == "forgotten"
    assert chain.body_runs() == [first]
    assert_invariants(chain)


# --- Exactly one successor, never two bodies ----------------------------------------------
def test_two_successors_only_one_runs_the_body(cluster: Cluster, tmp_path: Path) -> None:
    script = WAIT_FOR_GO.replace("{MARK_END}", "") + "sleep 3\n"
    chain = submit_chain(cluster, tmp_path, script)
    first = chain.wait_link_running(0)
    chain.wait_event("successor_queued")
    # A second successor of the same link, as a repair racing a link could make.
    meta = json.loads((chain.folder / "chain.json").read_text())
    duplicate = cluster.sbatch(
        f"--dependency=afterany:{first}", *meta["successor_options"],
        str(chain.folder / "link.sh"), *link_arguments(1, first, first), cwd=tmp_path,
    )  # fmt: skip
    (tmp_path / "go").touch()
    assert chain.wait_end() == "COMPLETED"
    cluster.wait_final(duplicate)
    (lost,) = chain.events("claim_lost")
    starts = [job for kind, job, _ in bodies(tmp_path) if kind == "start"]
    assert len(starts) == 2 and starts[0] == first and lost["job"] not in starts
    assert duplicate in {starts[1], lost["job"]}
    assert len(status_json(chain, tmp_path)["links"]) == 2
    assert_invariants(chain)


def test_requeue_by_the_users_own_program_makes_no_second_successor(
    cluster: Cluster, tmp_path: Path
) -> None:
    # As PyTorch Lightning does: on USR1, the program requeues its own job.
    script = f"""#!/bin/bash
#SBATCH -o out.txt
#SBATCH --signal=B:USR1@5
#SBATCH --time=10
{MARK}
if [ "${{SLURM_RESTART_COUNT:-0}}" -ge 1 ]; then {MARK_END}; exit 0; fi
trap 'scontrol requeue $SLURM_JOB_ID; sleep 30' USR1
while true; do sleep 0.2; done
"""
    chain = submit_chain(cluster, tmp_path, script, "--requeue")
    first = chain.wait_link_running(0)
    chain.wait_event("successor_queued")
    slurm.run(["scancel", "--batch", "--signal=USR1", first])
    assert chain.wait_end(timeout=240) == "COMPLETED"
    assert chain.links() == [first]
    assert len(chain.events("successor_queued")) == 1
    assert [job for kind, job, _ in bodies(tmp_path) if kind == "start"] == [first, first]
    assert status_json(chain, tmp_path)["links"][0]["slurm_restarts"] == 1
    text = run_cli(
        "longrun", "status", chain.chain_id, "--state-dir", str(chain.state_dir), cwd=tmp_path
    ).stdout
    assert f"Link 1 (job {first}) was requeued by Slurm once" in text
    assert_invariants(chain)


# --- SIGTERM and the pre-timeout signal at awkward moments ----------------------------------
def test_sigterm_during_the_prologue_never_starts_the_body(
    cluster: Cluster, tmp_path: Path
) -> None:
    faults = Faults(tmp_path)
    # The successor's submission waits; the cancel's SIGTERM ends that wait (and the wrapper).
    faults.arm("sbatch", "pass 1", "block 1")
    chain = submit_with_faults(cluster, tmp_path, faults, WAIT_FOR_GO)
    first = chain.first_job
    wait_for(
        lambda: any(c.mode == "block" for c in faults.calls("sbatch")),
        timeout=60, what="the successor submission to start",
    )  # fmt: skip
    cluster.cancel(first)
    assert chain.wait_end() == "CANCELLED"
    assert chain.body_runs() == [], "the body started after a SIGTERM"
    sigterm = next(e for e in chain.events("sigterm") if e["job"] == first)
    assert sigterm["verdict"] == "terminated"
    assert any(e["job"] == first for e in chain.events("body_skipped"))
    assert_invariants(chain)


def test_early_pre_timeout_signal_does_not_kill_the_link(cluster: Cluster, tmp_path: Path) -> None:
    faults = Faults(tmp_path)
    faults.arm("sbatch", "pass 1", "block 1")
    chain = submit_with_faults(cluster, tmp_path, faults, WAIT_FOR_GO)
    blocked = wait_for(
        lambda: next((c for c in faults.calls("sbatch") if c.mode == "block"), None),
        timeout=60, what="the successor submission to start",
    )  # fmt: skip
    # The pre-timeout signal reaches the batch shell while its submission waits, as Slurm's
    # --signal=B:USR1 would deliver it (delivered when kill returns), then the wait ends.
    # Its caller is the batch shell of link 1 (sbatch itself runs with the job's own
    # environment, which names no job).
    caller = Path(f"/proc/{blocked.caller}/environ").read_bytes().split(b"\0")
    assert f"SLURM_JOB_ID={chain.first_job}".encode() in caller
    os.kill(blocked.caller, signal.SIGUSR1)
    faults.release()
    chain.wait_link_running(0)
    (tmp_path / "go").touch()
    assert chain.wait_end() == "COMPLETED"
    assert len(chain.links()) == 2
    assert [e["job"] for e in chain.events("successor_queued")] == chain.links()
    assert chain.events("pretimeout_signal")


@pytest.mark.disruptive
def test_preemption_during_the_prologue_continues_the_chain(
    cluster: Cluster, tmp_path: Path
) -> None:
    faults = Faults(tmp_path)
    # The successor's sbatch is held until Slurm, at the end of the GraceTime, sends the batch
    # shell SIGTERM (the job shows COMPLETING); it is killed KillWait (5 s) later.
    faults.arm("sbatch", "pass 1", "block 1")
    chain = submit_with_faults(cluster, tmp_path, faults, WAIT_FOR_GO, "-p", "main")
    first = chain.first_job
    wait_for(
        lambda: any(c.mode == "block" for c in faults.calls("sbatch")),
        timeout=60, what="the successor submission to start",
    )  # fmt: skip
    cluster.preempt(first)
    cluster.wait_state(first, {"COMPLETING"}, timeout=120)
    faults.release()
    chain.wait_link_running(1, timeout=120)
    assert chain.wait_end() == "COMPLETED"
    sigterm = next(e for e in chain.events("sigterm") if e["job"] == first)
    assert (sigterm["verdict"], sigterm["cause"]) == ("interrupted", "preempted")
    assert chain.body_runs() == [chain.links()[1]]
    assert_invariants(chain)


def test_sigterm_after_the_completed_verdict_keeps_the_chain_completed(
    cluster: Cluster, tmp_path: Path
) -> None:
    faults = Faults(tmp_path)
    # The link's cancel of its successor, after its verdict, waits until the SIGTERM comes.
    faults.arm("scancel", "block 1")
    chain = submit_with_faults(
        cluster, tmp_path, faults, f"#!/bin/bash\n#SBATCH -o out.txt\n{MARK}\n{MARK_END}\n"
    )
    recorded = chain.wait_event("verdict")[0]
    assert recorded["verdict"] == "completed"
    wait_for(
        lambda: any(c.mode == "block" for c in faults.calls("scancel")),
        timeout=60, what="the link's cancel of its successor to start",
    )  # fmt: skip
    cluster.cancel(chain.first_job)
    sigterm = chain.wait_event("sigterm")[0]
    faults.release()
    assert (sigterm["job"], sigterm["final"]) == (chain.first_job, "1")
    assert chain.wait_end() == "COMPLETED"
    assert (chain.folder / "links" / chain.first_job / "verdict").read_text() == "completed\n"
    assert status_json(chain, tmp_path)["state"] == "COMPLETED"
    assert_invariants(chain)


@pytest.mark.disruptive
def test_node_failure_exit_0_during_the_kill_does_not_complete_the_chain(
    cluster: Cluster, tmp_path: Path
) -> None:
    # The step exits 0 on the SIGTERM of the node failure: that says nothing about the work.
    script = f"""#!/bin/bash
#SBATCH -o out.txt
{MARK}
if [ "$SLURM_LONGRUN_RESTART_COUNT" -ge 1 ]; then {MARK_END}; exit 0; fi
srun bash -c 'trap "exit 0" TERM; echo step ready; while true; do sleep 0.2; done'
"""
    chain = submit_chain(cluster, tmp_path, script, "--no-requeue")
    first = chain.wait_link_running(0)
    cluster.wait_file(tmp_path / "out.txt", "step ready")
    with cluster.node_down():
        assert cluster.wait_final(first, timeout=60) == "NODE_FAIL"
    assert chain.wait_end(timeout=180) == "COMPLETED"
    assert len(chain.links()) == 2
    verdict = (chain.folder / "links" / first / "verdict").read_text().strip()
    assert verdict in ("interrupted", "terminated"), verdict
    assert_invariants(chain)


def test_forwarded_signal_to_a_script_that_does_not_trap_it_continues_the_chain(
    cluster: Cluster, tmp_path: Path
) -> None:
    # The common script: B:USR1, srun python, and the Python program checkpoints on USR1.
    (tmp_path / "task.py").write_text(
        "import signal, sys, time\n"
        "def stop(*_):\n    print('task got USR1', flush=True)\n    sys.exit(0)\n"
        "signal.signal(signal.SIGUSR1, stop)\nprint('task ready', flush=True)\n"
        "while True:\n    time.sleep(0.2)\n"
    )
    script = """#!/bin/bash
#SBATCH --signal=B:USR1@5
#SBATCH --time=10
#SBATCH -o out.txt
if [ "$SLURM_LONGRUN_RESTART_COUNT" -ge 1 ]; then echo "link 1 ran"; exit 0; fi
srun python3 task.py
"""
    chain = submit_chain(cluster, tmp_path, script)
    first = chain.signal_when_ready(tmp_path, "task ready")
    assert chain.wait_end(timeout=120) == "COMPLETED"
    out = (tmp_path / "out.txt").read_text()
    assert "task got USR1" in out and "link 1 ran" in out
    recorded = next(e for e in chain.events("verdict") if e["job"] == first)
    assert recorded["verdict"] == "continue"


def test_body_that_ends_by_the_forwarded_signal_continues_the_chain(
    cluster: Cluster, tmp_path: Path
) -> None:
    script = """#!/usr/bin/env python3
#SBATCH --signal=B:USR1@5
#SBATCH --time=10
#SBATCH -o out.txt
import os, signal, time
if os.environ["SLURM_LONGRUN_RESTART_COUNT"] != "0":
    print("link 1 ran", flush=True)
    raise SystemExit(0)
def stop(*_):
    print("saved; dying of the signal", flush=True)
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGUSR1)
signal.signal(signal.SIGUSR1, stop)
print("ready", flush=True)
while True:
    time.sleep(0.2)
"""
    chain = submit_chain(cluster, tmp_path, script, name="job.py")
    first = chain.signal_when_ready(tmp_path, "ready")
    assert chain.wait_end(timeout=120) == "COMPLETED"
    exited = next(e for e in chain.events("body_exited") if e["job"] == first)
    assert exited["exit_code"] == "138"
    recorded = next(e for e in chain.events("verdict") if e["job"] == first)
    assert recorded["verdict"] == "continue"
    assert "link 1 ran" in (tmp_path / "out.txt").read_text()


# --- A stop is final ------------------------------------------------------------------------
def test_cancel_sticks_after_a_recorded_end(cluster: Cluster, tmp_path: Path) -> None:
    chain = submit_chain(cluster, tmp_path, WAIT_FOR_GO)
    first = chain.wait_link_running(0)
    result = run_cli(
        "longrun", "cancel", chain.chain_id, "--state-dir", str(chain.state_dir), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert chain.wait_end() == "CANCELLED"
    # A stray later link (a hand-made resubmission, or a successor that escaped the cancel).
    stray = cluster.sbatch(
        str(chain.folder / "link.sh"), *link_arguments(1, first, first), cwd=tmp_path,
        env=environment(),
    )  # fmt: skip
    cluster.wait_final(stray)
    assert chain.body_runs() == [first]
    assert chain.ended() == "CANCELLED"
    assert any(
        e["job"] == stray
        for e in chain.events()
        if e["event"] in ("body_skipped", "chain_end_kept")
    )


def test_users_scancel_of_the_queued_successor_stops_after_this_link(
    cluster: Cluster, tmp_path: Path
) -> None:
    chain = submit_chain(cluster, tmp_path, WAIT_FOR_GO)
    first = chain.wait_link_running(0)
    successor = str(chain.wait_event("successor_queued")[0]["successor"])
    cluster.cancel(successor)
    cluster.wait_final(successor)
    slurm.run(["scancel", "--batch", "--signal=USR1", first])  # the check finds it cancelled
    chain.wait_event("successor_stopped")
    (tmp_path / "go").touch()
    cluster.wait_final(first)
    env = environment(LONGRUN_WATCH_RUNNING_SECONDS="1", LONGRUN_WATCH_WAITING_SECONDS="1")
    watched = run_cli(
        "longrun", "watch", chain.chain_id, "--state-dir", str(chain.state_dir), cwd=tmp_path,
        env=env, timeout=60,
    )  # fmt: skip
    assert watched.returncode == 1
    assert chain.ended() == "CANCELLED"
    assert not chain.events("repaired") and len(chain.events("successor_queued")) == 1
    assert chain.body_runs() == [first]
    assert "stopped after link 1" in status_json(chain, tmp_path)["reason"]
    assert_invariants(chain)


def test_scancel_timed_into_the_judge_window_runs_no_body(cluster: Cluster, tmp_path: Path) -> None:
    faults = Faults(tmp_path)
    chain = submit_with_faults(cluster, tmp_path, faults, WAIT_FOR_GO)
    chain.wait_link_running(0)
    successor = str(chain.wait_event("successor_queued")[0]["successor"])
    # Link 1's epilogue asks once, then link 2's judging of it waits (after its claim) until
    # the cancel's SIGTERM ends that wait.
    faults.arm("scontrol", "pass 1", "block 1")
    (tmp_path / "go").touch()
    wait_for(
        lambda: any(c.job == successor and c.mode == "block" for c in faults.calls("scontrol")),
        timeout=60, what="link 2 to judge link 1",
    )  # fmt: skip
    cluster.cancel(successor)
    assert cluster.wait_final(successor) == "CANCELLED"
    assert successor not in chain.body_runs()
    assert any(e["job"] == successor for e in chain.events("sigterm"))


# --- One writer per file, hot loops, DEADLINE, -M -------------------------------------------
def test_one_writer_per_file_and_one_write_per_record(cluster: Cluster, tmp_path: Path) -> None:
    faults = Faults(tmp_path)
    faults.arm("sbatch", "pass 1", "failbig 1")  # 20 kB of error text in one event
    chain = submit_with_faults(cluster, tmp_path, faults, WAIT_FOR_GO)
    chain.wait_event("successor_queued")
    (tmp_path / "go").touch()
    assert chain.wait_end() == "COMPLETED"
    assert not (chain.folder / "events.jsonl").exists()
    for path in (chain.folder / "links").glob("*/events.jsonl"):
        lines = path.read_text().splitlines()
        records = [json.loads(line) for line in lines]
        assert {r["job"] for r in records} == {path.parent.name}
        assert all(len(line) < 4096 for line in lines)
    (retry,) = chain.events("successor_retry")
    assert len(retry["error"]) == 2000
    writers = list((chain.folder / "events.d").glob("*.jsonl"))
    assert len(writers) == 1  # the submission (no watcher, no other command)


def test_hot_loop_holds_the_successor_back(cluster: Cluster, tmp_path: Path) -> None:
    script = f"""#!/bin/bash
#SBATCH -o out.txt
{MARK}
[ "$SLURM_LONGRUN_RESTART_COUNT" -ge 4 ] && exit 0
exit "$SLURM_LONGRUN_CONTINUE_CODE"
"""
    chain = submit_chain(cluster, tmp_path, script, env=environment(LONGRUN_BACKOFF_SECONDS="4"))
    assert chain.wait_end(timeout=240) == "COMPLETED"
    backoffs = chain.events("backoff")
    assert [(e["short_links"], e["seconds"]) for e in backoffs] == [("3", "4"), ("4", "8")]
    links = chain.links()
    assert len(links) == 5
    records = [sacct_record(job) for job in links]
    gaps = [
        slurm_epoch_of(b.start) - slurm_epoch_of(a.end)
        for a, b in zip(records, records[1:])
        if a and b
    ]
    assert gaps[2] >= 3 and gaps[3] >= 7, gaps  # whole seconds in sacct
    assert_invariants(chain)


def test_deadline_ends_the_chain(cluster: Cluster, tmp_path: Path) -> None:
    deadline = time_in(75)
    script = f"""#!/bin/bash
#SBATCH -o out.txt
#SBATCH --time=1
{MARK}
sleep 20
exit "$SLURM_LONGRUN_CONTINUE_CODE"
"""
    chain = submit_chain(cluster, tmp_path, script, f"--deadline={deadline}")
    first = chain.wait_link_running(0)
    successor = str(chain.wait_event("successor_queued")[0]["successor"])
    assert cluster.wait_final(successor, timeout=120) == "DEADLINE"
    env = environment(LONGRUN_WATCH_RUNNING_SECONDS="1", LONGRUN_WATCH_WAITING_SECONDS="1")
    watched = run_cli(
        "longrun", "watch", chain.chain_id, "--state-dir", str(chain.state_dir), cwd=tmp_path,
        env=env, timeout=60,
    )  # fmt: skip
    assert watched.returncode == 1
    assert chain.ended() == "DEADLINE"
    assert not chain.events("repaired")
    assert chain.body_runs() == [first]


def time_in(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() + seconds))


def test_clusters_option_reaches_every_slurm_command(cluster: Cluster, tmp_path: Path) -> None:
    faults = Faults(tmp_path)
    name = slurm.run(["scontrol", "show", "config"]).stdout
    cluster_name = next(
        line.split("=", 1)[1].strip()
        for line in name.splitlines()
        if line.startswith("ClusterName")
    )
    chain = submit_with_faults(cluster, tmp_path, faults, WAIT_FOR_GO, "-M", cluster_name)
    chain.wait_link_running(0)
    (tmp_path / "go").touch()
    assert chain.wait_end() == "COMPLETED"
    calls = faults.calls()
    assert {c.command for c in calls} >= {"sbatch", "scontrol", "scancel"}
    for call in calls:
        assert f"-M {cluster_name}" in call.args, call
    assert status_json(chain, tmp_path)["state"] == "COMPLETED"


# --- Real faults of the cluster -------------------------------------------------------------
@pytest.mark.disruptive
def test_slurmctld_restart_while_a_link_runs_and_its_successor_waits(
    cluster: Cluster, tmp_path: Path
) -> None:
    chain = submit_chain(cluster, tmp_path, WAIT_FOR_GO)
    first = chain.wait_link_running(0)
    successor = str(chain.wait_event("successor_queued")[0]["successor"])
    cluster.restart_daemon("slurmctld")
    (tmp_path / "go").touch()
    assert chain.wait_end(timeout=180) == "COMPLETED"
    assert chain.links() == [first, successor]
    assert chain.body_runs() == [first, successor]
    assert_invariants(chain)


@pytest.mark.disruptive
def test_slurmdbd_down_for_a_whole_link_and_longer_than_the_judge_window(
    cluster: Cluster, tmp_path: Path
) -> None:
    env = environment(LONGRUN_JUDGE_SECONDS="5")
    with cluster.daemon_down("slurmdbd"):
        done = submit_chain(cluster, tmp_path / "done", WAIT_FOR_GO, env=env)
        cancelled = submit_chain(cluster, tmp_path / "cancelled", WAIT_FOR_GO, env=env)
        done.wait_link_running(0)
        first = cancelled.wait_link_running(0)
        (tmp_path / "done" / "go").touch()
        cluster.cancel(first)
        assert done.wait_end() == "COMPLETED"
        assert cancelled.wait_end() == "CANCELLED"
    assert len(done.links()) == 2 and cancelled.body_runs() == [first]
    assert_invariants(done)
    assert_invariants(cancelled)


def test_a_link_whose_library_was_altered_runs_nothing_and_ends_the_chain(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Link 2 finds library.sh changed after submission: it says so in its log, runs no body,
    queues nothing, and the chain ends FAILED (no repair brings it back)."""
    script = f"""#!/bin/bash
{MARK}
if [ "$SLURM_LONGRUN_RESTART_COUNT" -ge 1 ]; then exit 0; fi
while [ ! -e go ]; do sleep 1; done
exit 75
"""
    chain = submit_chain(cluster, tmp_path, script, "--output=%j.out")
    chain.wait_link_running(0)
    second = chain.wait_event("successor_queued")[0]["successor"]
    library = chain.folder / "library.sh"
    assert library.stat().st_mode & 0o777 == 0o400
    library.chmod(0o600)
    with library.open("a") as handle:
        handle.write("echo changed\n")
    (tmp_path / "go").touch()
    assert chain.wait_end() == "FAILED"
    assert [kind for kind, _, _ in bodies(tmp_path)] == ["start"]
    log = wait_for(
        lambda: (tmp_path / f"{second}.out").exists() and (tmp_path / f"{second}.out").read_text(),
        timeout=60,
        what="the second link's log",
    )
    assert f"{library} is missing or altered; nothing of your script ran" in log
    # slurmdbd may still show the job PENDING for a moment after it ran.
    assert cluster.wait_sacct(second, {"FAILED"}).state == "FAILED"
    assert chain.queued() == {}
    status = run_cli(
        "longrun", "status", chain.chain_id, "--state-dir", str(chain.state_dir), cwd=tmp_path
    )
    assert "FAILED" in status.stdout
