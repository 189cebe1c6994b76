"""A chain that learns, tried against the promises by a review (each of these failed on the
first version of the learning steps, 1d4b05f): killed and requeued links and the time budget,
an accounting that does not answer, hand-overs without end, the watcher's view of free links
and of the grown memory, hostile node lists, and links that Slurm interrupted."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from test_learning import already_avoided, ended, on_nodes, recorded_link, side_with

from longrun import chain_actions, protocol, slurm, states
from longrun.chain_record import ChainRecord
from longrun.chain_view import build_view
from longrun.render import shquote
from longrun.slurm_output import QueueRow

RECORD = """JobId={job} JobName=job.sh
   UserId=root(0) GroupId=root(0) MCS_label=N/A
   JobState={state} Reason=None Dependency=(null)
   RunTime=00:00:10 TimeLimit=01:00:00 TimeMin=N/A
   StartTime={start} EndTime={end} Deadline=N/A
   PreemptEligibleTime={start} PreemptTime=None
   Partition=main AllocNode:Sid=vm:1
"""


def iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(epoch))


# --- 1. --total-time: a killed link's end is never taken from Slurm's record -----------------
def test_a_killed_links_run_time_is_taken_from_slurms_end_not_from_the_next_links_start(
    tmp_path: Path,
) -> None:
    # Link 200 started 3000 s ago and was killed (NODE_FAIL) 10 s after its start: no `ended`
    # in its record. Slurm's record says when it ended. The successor waited in the queue
    # for the rest. README: "each link's from its own start and end (a killed link's end from
    # Slurm's record)": 10 s used of 2000 s, so link 300 runs the body.
    side = side_with(tmp_path, total_time="2000s")
    side.partition_has("vm", "vm2")
    now = int(time.time())
    previous = side.chain.link_dir("200")
    previous.mkdir(parents=True)
    (previous / "learned").write_text(f"nodes=vm\nstarted={now - 3000}\nended=\nused=0\n")
    (side.bin / "scontrol-200").write_text(
        RECORD.format(job="200", state=states.NODE_FAIL, start=iso(now - 3000), end=iso(now - 2990))
    )
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("300", 1, "200", slurm_env=on_nodes("vm2"))
    assert ended(side) == "", side.events(protocol.CHAIN_ENDED)
    assert side.bodies_run() == ["300"]


# --- 2. one failed sacct call decides "not out of memory" ------------------------------------
def test_one_failed_sacct_call_does_not_decide_that_a_step_did_not_run_out_of_memory(
    tmp_path: Path,
) -> None:
    # --grow-mem-on-oom: the srun step ran out of memory (the job ends FAILED, only the step
    # says OUT_OF_MEMORY). At the link's end slurmdbd does not answer once: the link records
    # the decisive verdict `failed`, and the next link ends the chain FAILED instead of
    # growing the memory (promise 3: a failed Slurm call is "unknown").
    side = side_with(tmp_path, grow_mem_on_oom="2")
    side.body_exits(1)
    (side.bin / "sacct-200").write_text("COMPLETED\nOUT_OF_MEMORY\nFAILED\n")
    side.accounting_fails("sacct: error: slurmdbd: Connection refused")
    side.run("200", 0, slurm_env={"SLURM_MEM_PER_NODE": "100"})
    (side.bin / "sacct.err").unlink()  # slurmdbd is back
    side.slurm_shows("200", states.FAILED)
    side.run("300", 1, "200", slurm_env={"SLURM_MEM_PER_NODE": "100"})
    assert ended(side) != states.CHAIN_FAILED, side.events(protocol.CHAIN_ENDED)
    assert side.events(protocol.MEMORY_GROWN)


# --- 3. a node check that fails everywhere hands over forever ------------------------------
def test_a_node_check_that_fails_on_every_node_does_not_hand_over_forever(tmp_path: Path) -> None:
    check = tmp_path / "check.sh"
    check.write_text("#!/bin/bash\nexit 1\n")  # e.g. nvidia-smi on a partition without GPUs
    check.chmod(0o755)
    side = side_with(tmp_path, max_restarts=2, node_check=str(check))
    side.partition_has("vm", "vm2")
    free = 0
    previous = ""
    for restart in range(12):  # 4x the links --max-restarts 2 allows
        job = str(200 + restart)
        node = "vm" if restart % 2 == 0 else "vm2"
        args = (f"--free-links={free}",) if free else ()
        if previous:
            side.slurm_shows(previous, states.COMPLETED)
        before = len(side.submitted())
        side.run(
            job,
            restart,
            previous,
            arguments=args,
            slurm_env=on_nodes(node),
        )
        if ended(side) or len(side.submitted()) == before:
            break  # the chain stopped: fine
        free = int(side.submitted()[-1].split("--free-links=")[1].split()[0])
        previous = job
    assert side.bodies_run() == []
    assert ended(side) != "" or len(side.submitted()) < 12, (
        f"{len(side.submitted())} hand-overs in a row, --free-links={free}, no end, no backoff: "
        "the chain loops for ever"
    )


# --- 4. a link requeued by Slurm loses its first run from the time budget ---------------------
def test_a_requeued_links_first_run_counts_against_the_time_budget(tmp_path: Path) -> None:
    # Link 300 ran 1400 s, then Slurm requeued it (same job id, SLURM_RESTART_COUNT=1). Its
    # second run rewrites its record with started=now: the 1400 s are forgotten, and the
    # chain overruns --total-time 1000s.
    side = side_with(tmp_path, total_time="1000s")
    now = int(time.time())
    recorded_link(side, "200", f"started={now - 2000}\nended={now - 1900}\nused=0\n")
    side.slurm_shows("200", states.COMPLETED)
    first = side.chain.link_dir("300")
    first.mkdir(parents=True)
    (first / "learned").write_text(f"started={now - 1500}\nended=\nused=100\n")
    (side.chain.link_dir("200") / "claim").symlink_to("300")  # its first run claimed 200
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("300", 1, "200", slurm_restarts=1)
    side.slurm_shows("300", states.COMPLETED)
    side.run("301", 2, "300")
    assert ended(side) == states.CHAIN_TIME_BUDGET
    assert "301" not in side.bodies_run(), "the chain ran past --total-time"


# --- 5. the watcher counts free links from hand-over events, the job side from its arguments ---
PREEMPTED_RECORD = """JobId={job} JobName=job.sh
   UserId=root(0) GroupId=root(0) MCS_label=N/A
   JobState=RUNNING Reason=None Dependency=(null)
   RunTime=00:00:05 TimeLimit=01:00:00 TimeMin=N/A
   StartTime=2026-11-30T10:00:00 EndTime=2026-11-30T11:00:00 Deadline=N/A
   PreemptEligibleTime=2026-11-30T10:00:00 PreemptTime=2026-11-30T10:00:05
   Partition=main AllocNode:Sid=vm:1
"""


def test_the_watcher_does_not_cancel_the_successor_of_a_hand_over_preempted_at_its_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --max-restarts 0. Link 200 starts on a node the chain avoids: it queues its successor
    # with --free-links=1 (restart count 1 is allowed), then it is preempted before it writes
    # its hand-over event. The successor 300 runs the body, legitimately (the job side's
    # limit is 1). The watcher counts free links from `handed_over` events only: it finds
    # none, takes 300 for a link beyond --max-restarts, and cancels it while it runs.
    side = side_with(tmp_path, max_restarts=0)
    side.partition_has("vm", "vm2")
    already_avoided(side, "vm")
    # Preempted while it queues its successor: SIGTERM, Slurm shows a PreemptTime.
    side.on_call(
        "sbatch",
        f"printf '%s' {shquote(PREEMPTED_RECORD.format(job='200'))} >\"$dir/scontrol-200\"; "
        'kill -TERM "$PPID"',
    )
    side.slurm_shows("200", states.RUNNING)
    subprocess.run(
        side.command("200", 0), env={**side.environ("200"), **on_nodes("vm")},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    (successor,) = side.submitted()
    assert "--free-links=1" in successor
    assert not side.events(protocol.HANDED_OVER)
    (side.bin / "on-sbatch").unlink()
    side.slurm_shows("200", states.PREEMPTED, preempted=True)
    side.body_runs("sleep 0")
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("300", 1, "200", arguments=("--free-links=1",), slurm_env=on_nodes("vm2"))
    assert side.bodies_run() == ["300"]  # the job side: a legitimate link
    # The watcher, while 300 still runs.
    meta = ChainRecord(chain_id=side.chain.chain_id, max_restarts=0)
    side.chain.write_meta(meta)
    running = {"300": QueueRow("300", states.RUNNING, "None", "0:05", "59:55", "", "")}
    view = build_view(meta, side.chain.read_events(), None, running)
    cancelled: list[str] = []
    monkeypatch.setattr(slurm, "scancel", lambda job, clusters: cancelled.append(job))
    chain_actions.enforce_max_restarts(side.chain, view)
    assert cancelled == [], "the watcher cancelled a legitimate link as beyond --max-restarts"


# --- 6. the watcher's repair of a hand-over for more memory forgets the memory ----------------
def test_a_repaired_successor_of_a_memory_hand_over_asks_for_the_grown_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --mem=100M --grow-mem-on-oom 2. Link 200 runs out of memory; link 300 hands over to a
    # successor with --mem=200M, but sbatch fails (the chain stalls, the watcher repairs).
    # The repair takes `memory` from 300's link_started event: the memory 300 HAD (100), not
    # the grown one, and puts no --mem in sbatch's options: the repaired link runs the
    # body again with 100M and runs out of memory again.
    side = side_with(tmp_path, grow_mem_on_oom="2")
    side.body_exits(137)
    side.run("200", 0, slurm_env={"SLURM_MEM_PER_NODE": "100"})
    side.slurm_shows("200", states.OUT_OF_MEMORY)
    side.on_call("sbatch", "echo 'sbatch: error: Batch job submission failed' >&2; exit 1")
    side.run("300", 1, "200", slurm_env={"SLURM_MEM_PER_NODE": "100"})
    assert side.events(protocol.HANDED_OVER) and side.events(protocol.CHAIN_STALLED)
    meta = ChainRecord.from_dict({
        "chain_id": side.chain.chain_id, "max_restarts": 999, "successor_options": ["--mem=100M"],
        "learning": {"grow_percent": 200},
    })  # fmt: skip
    side.chain.write_meta(meta)
    rows = {
        job: QueueRow(job, state, "None", "0:05", "0:00", "", "")
        for job, state in (("200", states.OUT_OF_MEMORY), ("300", states.COMPLETED))
    }
    submitted: list[list[str]] = []
    monkeypatch.setattr(slurm, "queue_rows", lambda jobs, clusters=(): rows)
    monkeypatch.setattr(slurm, "tagged_jobs", lambda tag, clusters=(): [])
    monkeypatch.setattr(slurm, "sbatch", lambda args, **_: submitted.append(list(args)) or "901")
    from longrun.chain_store import StateDir

    side.chain.path.chmod(0o700)
    job = chain_actions.repair(side.chain, StateDir(side.chain.path.parent.parent))
    assert job == "901"
    (args,) = submitted
    assert "--memory=mem=200" in args and "--mem=200M" in args, " ".join(args[-5:])


# --- 1b. a hand-over's queue wait is charged to --total-time -----------------------------------
def test_a_hand_over_costs_its_successors_queue_wait_nothing_from_the_time_budget(
    tmp_path: Path,
) -> None:
    # --total-time 3h. Link 200 hands over (its node is avoided) in a second; its successor
    # waits 2 h in the queue. The hand-over records its own end, so link 300 does not count
    # the 2 h wait as run time (nor cut its own time limit to the hour "left").
    side = side_with(tmp_path, total_time="3h")
    side.partition_has("vm", "vm2")
    already_avoided(side, "vm")
    side.run("200", 0, slurm_env=on_nodes("vm"))
    assert side.events(protocol.HANDED_OVER)
    learned = side.chain.link_dir("200") / "learned"
    text = learned.read_text()
    now = int(time.time())
    started = int(text.split("started=")[1].split()[0])
    ended_at = int(text.split("ended=")[1].split()[0])  # a hand-over records its end
    assert started <= ended_at <= now
    text = text.replace(f"started={started}", f"started={now - 7200}")
    learned.write_text(text.replace(f"ended={ended_at}", f"ended={now - 7199}"))
    (side.bin / "scontrol-200").write_text(
        RECORD.format(job="200", state=states.COMPLETED, start=iso(now - 7200), end=iso(now - 7199))
    )
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("300", 1, "200", arguments=("--free-links=1",),
             slurm_env=on_nodes("vm2", SLURM_JOB_END_TIME=str(now + 7200)))  # fmt: skip
    assert not side.events(protocol.TIME_CUT), side.events(protocol.TIME_CUT)


# --- 7. a node range in an event expands without bound in `longrun status` --------------------
def test_a_node_range_in_an_event_neither_hangs_nor_exhausts_longrun_status(tmp_path: Path) -> None:
    # tests/unit/test_hostile_files.py's promise: whatever a job puts in an event file, the
    # reading commands neither crash nor hang. The new `nodes` fields are expanded by
    # slurm_output.hostnames with no bound: one `nodes_avoided` event (written by a link from
    # a corrupted `learned` file: "nodes=vm[0-999999999]" passes lr_read_learned's check)
    # makes `longrun status` and `longrun list` run out of time and memory.
    from test_hostile_files import LAST_EPOCH, TIMEOUT, add_line, chain, event, status

    from statetest import state_with

    state = state_with(tmp_path, "timeout", "failed")
    add_line(chain(state) / "links/143/events.jsonl",
             event("nodes_avoided", LAST_EPOCH, job="143", nodes="vm[0-999999999]",
                   until=str(LAST_EPOCH + 3600), cause="NODE_FAIL"))  # fmt: skip
    status(state, TIMEOUT)


# --- 8. preemptions and node failures count as "no progress" ---------------------------------
def test_links_preempted_before_they_could_checkpoint_do_not_end_the_chain_no_progress(
    tmp_path: Path,
) -> None:
    # --progress-file (an option older than this change, for `longrun usage`) now brings
    # --max-idle-links 3 by default. Three links in a row preempted (or lost with their node)
    # before their first checkpoint end the chain NO_PROGRESS, though nothing is wrong with
    # the work and restarts remain: "each link's work is continued while restarts remain".
    progress = tmp_path / "step"
    side = side_with(tmp_path, progress_file=str(progress))
    side.body_runs(f"echo 1 > {progress}")
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("200", 0)
    side.slurm_shows("200", states.COMPLETED)
    side.body_runs('kill -9 "$PPID"')  # preempted (or its node lost) before any checkpoint
    previous = "200"
    for restart, job in enumerate(("300", "301", "302"), start=1):
        side.run(job, restart, previous)
        side.slurm_shows(job, states.PREEMPTED, preempted=True)
        previous = job
    side.body_runs("true")
    side.run("303", 4, previous)
    assert ended(side) != states.CHAIN_NO_PROGRESS, side.events(protocol.CHAIN_ENDED)


# --- what held up ---------------------------------------------------------------------------
def test_hostile_learned_and_avoid_files_are_never_evaluated(tmp_path: Path) -> None:
    mark = tmp_path / "pwned"
    side = side_with(tmp_path, total_time="3h", progress_file=str(tmp_path / "step"))
    side.partition_has("vm", "vm2")
    previous = side.chain.link_dir("200")
    previous.mkdir(parents=True)
    evil = f"a[$(touch {mark})]"
    (previous / "learned").write_text(
        "\n".join(f"{key}={evil}" for key in protocol.LEARNED_KEYS) + "\n"
    )
    (previous / "avoid").write_text(f"vm {evil} x\n{evil} 99999999999 y\nvm -5 z\n")
    (previous / "verdict").write_text("continue\n")
    side.slurm_shows("200", states.TIMEOUT)
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("300", 1, "200", slurm_env=on_nodes("vm"))
    assert not mark.exists()
    assert side.bodies_run() == ["300"]


def test_a_hand_over_at_the_last_allowed_link_still_queues_one_successor(tmp_path: Path) -> None:
    side = side_with(tmp_path, max_restarts=0)
    side.partition_has("vm", "vm2")
    already_avoided(side, "vm")
    side.run("200", 0, slurm_env=on_nodes("vm"))
    (successor,) = side.submitted()
    assert "--free-links=1" in successor and "--exclude=vm" in successor
    side.slurm_shows("200", states.COMPLETED)
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("300", 1, "200", arguments=("--free-links=1",), slurm_env=on_nodes("vm2"))
    assert side.bodies_run() == ["300"]
    assert len(side.submitted()) == 1  # the last allowed link queues none
    assert ended(side) == states.CHAIN_MAX_RESTARTS


def test_a_hand_over_cancelled_after_queuing_its_successor_ends_the_chain(tmp_path: Path) -> None:
    side = side_with(tmp_path)
    side.partition_has("vm", "vm2")
    already_avoided(side, "vm")
    side.on_call("sbatch", 'kill -TERM "$PPID"')  # scancel of the link while it queues
    side.slurm_shows("200", states.RUNNING)
    subprocess.run(
        side.command("200", 0),
        env={**side.environ("200"), **on_nodes("vm")},
        capture_output=True,
        timeout=60,
        check=False,
    )
    (side.bin / "on-sbatch").unlink()
    side.slurm_shows("200", states.CANCELLED)
    side.run("300", 1, "200", arguments=("--free-links=1",), slurm_env=on_nodes("vm2"))
    assert side.bodies_run() == []
    assert ended(side) == states.CHAIN_CANCELLED


def test_a_link_stopped_from_outside_after_a_preempted_one_is_not_taken_for_preempted(
    tmp_path: Path,
) -> None:
    """Slurm's view of the previous link (its PreemptTime, its start) is not this link's: a
    link scancelled after a preempted one records its own facts (seen: a time-limited link
    after a preemption recorded the preempted link's start as its own)."""
    side = side_with(tmp_path)
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("200", 0)
    side.slurm_shows("200", states.PREEMPTED, preempted=True)
    side.body_runs('kill -TERM "$PPID"; sleep 1')  # a scancel of link 300 while it runs
    side.run("300", 1, "200")
    verdict = [e for e in side.events(protocol.VERDICT_RECORDED) if e["job"] == "300"][-1]
    assert (verdict["preempted"], verdict["start"]) == ("0", "")
