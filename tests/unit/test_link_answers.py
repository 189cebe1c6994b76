"""The job side when Slurm is slow, silent or says no (issue 19), run whole against stand-in
Slurm commands: no answer is never an end, a link uses what it knows (its end time) before it
asks, a cancel is seen at once, signals reach the script as under plain sbatch, and a claim
that cannot be written is not a lost claim. The same faults on the real cluster:
tests/e2e/test_slurm_faults.py."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from jobside import JobSide

from longrun import protocol, states
from longrun.chain_view import build_view
from longrun.plan import WrapperOptions
from slurmguard import stand_ins

NO_ANSWER = "slurm_load_jobs error: Socket timed out on send/recv operation"
NO_DATABASE = "sacct: error: Problem talking to the database: Connection refused"


def forgotten(side: JobSide, job: str) -> None:
    """slurmctld no longer knows `job` and the accounting has no record of it."""
    (side.bin / f"scontrol-{job}").unlink(missing_ok=True)
    (side.bin / f"sacct-{job}").write_text("")


def test_a_stopped_link_whose_end_slurm_does_not_answer_is_not_taken_as_a_cancel(
    tmp_path: Path,
) -> None:
    side = JobSide(tmp_path, settings={"LONGRUN_ANSWER_SECONDS": "3"})
    side.previous_verdict("100", states.VERDICT_TERMINATED)
    side.slurm_fails("100", NO_ANSWER)
    side.accounting_fails(NO_DATABASE)
    side.body_exits(0)
    side.run("200", 1, "100")
    assert side.bodies_run() == ["200"]
    (judged,) = side.events("judged")
    assert (judged["answer"], judged["outcome"]) == (protocol.ANSWER_NONE, states.RUN)
    (waiting,) = side.events("waiting")
    assert (waiting["about"], waiting["question"]) == ("100", "how it ended")
    assert waiting["reason"] == "slurmctld did not answer; sacct did not answer"
    assert side.chain.ended() == states.CHAIN_COMPLETED  # by its own body


def test_a_stopped_link_that_slurm_answers_it_no_longer_knows_is_a_cancel(side: JobSide) -> None:
    side.previous_verdict("100", states.VERDICT_TERMINATED)
    forgotten(side, "100")
    side.run("200", 1, "100")
    assert side.bodies_run() == []
    (judged,) = side.events("judged")
    assert judged["answer"] == protocol.ANSWER_FORGOTTEN
    assert side.chain.ended() == states.CHAIN_CANCELLED
    assert not side.events("waiting")


def test_a_cancel_wins_over_what_the_link_said_before(side: JobSide) -> None:
    # scancel landed after the verdict: a continue (or a failure with retries left) does not
    # let the successor run.
    for job, verdict in (("100", states.VERDICT_CONTINUE), ("101", states.VERDICT_FAILED)):
        side.previous_verdict(job, verdict)
        side.slurm_shows(job, states.CANCELLED)
    side.run("200", 1, "100")
    side.run("201", 1, "101", arguments=())
    assert side.bodies_run() == []
    outcomes = [e["outcome"] for e in side.events("judged")]
    assert outcomes == [states.END_CANCELLED, states.END_CANCELLED]
    assert side.chain.ended() == states.CHAIN_CANCELLED
    assert not side.events("retry")


def test_a_requeued_link_keeps_its_judgement_after_slurm_forgot_the_previous_link(
    side: JobSide,
) -> None:
    # The first run judged link 100 (stopped, Slurm said TIMEOUT) and ran the body; Slurm
    # requeued it (a REQUEUE preemption) after 100's record was purged: the rerun runs again.
    side.previous_verdict("100", states.VERDICT_TERMINATED)
    side.slurm_shows("100", states.TIMEOUT)
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("200", 1, "100")
    forgotten(side, "100")
    side.run("200", 1, "100", slurm_restarts=1)
    assert side.bodies_run() == ["200", "200"]
    kept = [e for e in side.events("judged") if e.get("kept") == "1"]
    assert [e["outcome"] for e in kept] == [states.RUN]
    assert side.chain.ended() is None


def test_a_failed_script_while_slurm_does_not_answer_leaves_the_decision_to_slurms_record(
    tmp_path: Path,
) -> None:
    side = JobSide(tmp_path, settings={"LONGRUN_JUDGE_SECONDS": "3"})
    # Preempted and killed (exit 143), but slurmctld does not answer whether the job ends:
    # not FAILED on no answer; the next link judges from Slurm's record.
    side.body_runs(f"echo {NO_ANSWER!r} > {side.bin}/scontrol-100.err")
    side.body_exits(143)
    side.run("100", 0)
    (verdict,) = side.events("verdict")
    assert verdict["verdict"] == states.VERDICT_UNDECIDED
    assert side.chain.ended() is None
    assert [e["question"] for e in side.events("waiting")] == ["whether it still runs"]
    assert not side.calls("scancel"), "the successor was cancelled on no answer"
    side.slurm_shows("100", states.PREEMPTED)
    side.body_runs("")
    side.body_exits(0)
    side.run("300", 1, "100")
    assert side.bodies_run() == ["100", "300"]
    assert side.chain.ended() == states.CHAIN_COMPLETED


def test_undecided_then_failed_in_slurms_record_ends_the_chain_failed(side: JobSide) -> None:
    side.previous_verdict("100", states.VERDICT_UNDECIDED)
    side.slurm_shows("100", states.FAILED)
    side.run("200", 1, "100")
    assert side.bodies_run() == []
    assert side.chain.ended() == states.CHAIN_FAILED


def test_undecided_then_failed_keeps_the_retries_of_retry_failed(tmp_path: Path) -> None:
    side = JobSide(tmp_path, wrapper=WrapperOptions(retry_failed=2))
    side.previous_verdict("100", states.VERDICT_UNDECIDED)
    side.slurm_shows("100", states.FAILED)
    side.run("200", 1, "100")
    assert side.bodies_run() == ["200"]
    assert [e["attempt"] for e in side.events("retry")] == ["1"]


def test_undecided_at_the_last_link_allowed_ends_the_chain(tmp_path: Path) -> None:
    side = JobSide(tmp_path, wrapper=WrapperOptions(max_restarts=1))
    side.previous_verdict("100", states.VERDICT_CONTINUE)
    side.slurm_shows("100", states.COMPLETED)
    side.body_runs(f"echo {NO_ANSWER!r} > {side.bin}/scontrol-200.err")
    side.body_exits(1)
    link = side.run("200", 1, "100")
    assert side.events("verdict")[0]["verdict"] == states.VERDICT_UNDECIDED
    assert side.chain.ended() == states.CHAIN_MAX_RESTARTS
    assert "no restarts are left" in link.stderr


def test_a_sigterm_at_the_end_time_is_a_time_limit_without_slurms_answer(side: JobSide) -> None:
    end = int(time.time()) + 2
    side.body_runs(f"echo {NO_ANSWER!r} > {side.bin}/scontrol-100.err; sleep 3; kill -TERM $PPID")
    side.run("100", 0, slurm_env={"SLURM_JOB_END_TIME": str(end)})
    (sigterm,) = side.events("sigterm")
    assert (sigterm["cause"], sigterm["verdict"], sigterm["answered"]) == (
        states.TIME_LIMIT_REASON, states.VERDICT_INTERRUPTED, "0",
    )  # fmt: skip
    assert (side.chain.link_dir("100") / "verdict").read_text().strip() == "interrupted"
    assert side.chain.ended() is None


def test_a_sigterm_before_the_end_time_without_an_answer_is_not_a_cancel(side: JobSide) -> None:
    end = int(time.time()) + 600
    side.body_runs(f"echo {NO_ANSWER!r} > {side.bin}/scontrol-100.err; kill -TERM $PPID; sleep 2")
    side.run("100", 0, slurm_env={"SLURM_JOB_END_TIME": str(end)})
    (sigterm,) = side.events("sigterm")
    assert (sigterm["verdict"], sigterm["answered"]) == (states.VERDICT_TERMINATED, "0")
    assert side.chain.ended() is None  # the next link asks Slurm
    assert not side.calls("scancel")


def cancel_seen(side: JobSide, restarts: int) -> None:
    """The body has slurmctld show its link ending (as scancel or a requeue does), then the
    link gets SIGTERM."""
    side.body_runs(
        f"cp {side.bin}/cancelled-record {side.bin}/scontrol-100; kill -TERM $PPID; sleep 2"
    )
    side.slurm_shows("cancelled", states.COMPLETING, restarts=restarts)
    (side.bin / "cancelled-record").write_text(
        (side.bin / "scontrol-cancelled").read_text().replace("JobId=cancelled", "JobId=100")
    )


def test_a_scancel_of_a_running_link_ends_the_chain_at_once(side: JobSide) -> None:
    cancel_seen(side, restarts=0)
    side.run("100", 0, slurm_env={"SLURM_JOB_END_TIME": str(int(time.time()) + 600)})
    assert side.chain.ended() == states.CHAIN_CANCELLED
    (ended,) = side.events("chain_ended")
    assert "cancelled while it ran" in ended["reason"]
    assert [e["successor"] for e in side.events("successor_cancelled")] == ["300"]
    assert side.calls("scancel") == ["scancel 300"]
    # It lived on to record its verdict (as on 24.11): it still shows as cancelled.
    assert side.events("verdict")[0]["verdict"] == states.VERDICT_TERMINATED
    side.write_record()
    view = build_view(side.chain.read_meta(), side.chain.read_events(), side.chain.ended())
    assert view.links[0].state == states.CANCELLED


def test_a_requeue_of_a_running_link_is_not_taken_for_a_cancel(side: JobSide) -> None:
    cancel_seen(side, restarts=1)  # scontrol requeue: Restarts is one higher in the handler
    side.run("100", 0, slurm_env={"SLURM_JOB_END_TIME": str(int(time.time()) + 600)})
    assert side.chain.ended() is None
    assert not side.calls("scancel")


def test_a_signal_to_the_batch_shell_reaches_the_script_whose_trap_decides(
    side: JobSide,
) -> None:
    got = side.tmp / "got"
    side.body_runs(f"trap 'echo USR2 >> {got}' USR2; kill -USR2 $PPID; sleep 1; sleep 1")
    link = side.run("100", 0)
    assert got.read_text() == "USR2\n"
    assert link.returncode == 0 and side.chain.ended() == states.CHAIN_COMPLETED
    assert [e["signal"] for e in side.events("signal_forwarded")] == ["USR2"]


def test_a_signal_the_script_does_not_catch_ends_it_as_under_plain_sbatch(side: JobSide) -> None:
    # (short sleeps: the signal ends the loop, and no sleep outlives it holding the output)
    side.body_runs("kill -USR2 $PPID; for i in $(seq 600); do sleep 0.1; done")
    link = side.run("100", 0)
    assert link.returncode == 140
    (verdict,) = side.events("verdict")
    assert verdict["verdict"] == states.VERDICT_FAILED
    assert "SIGUSR2" in verdict["reason"]
    assert side.chain.ended() == states.CHAIN_FAILED


def test_a_signal_before_the_script_runs_is_given_to_it_once_it_catches_it(
    side: JobSide,
) -> None:
    got = side.tmp / "got"
    side.on_call("sbatch", 'kill -HUP "$PPID"')  # while the link queues its successor
    side.body_runs(f"trap 'echo HUP >> {got}' HUP; sleep 3")
    side.run("100", 0)
    assert [e["signal"] for e in side.events("signal_held")] == ["HUP"]
    assert got.read_text() == "HUP\n"
    assert side.chain.ended() == states.CHAIN_COMPLETED


def ln_fails(side: JobSide, times: int, words: str) -> str:
    """A PATH whose `ln` fails `times` times to create a claim, with `words`."""
    faults = side.tmp / "fault-bin"
    count = side.tmp / "ln-failures"
    script = (
        "for last; do :; done\ncase $last in */claim)\n"
        f'  if [ "$(cat {count} 2>/dev/null | wc -l)" -lt {times} ]; then\n'
        f"    echo x >> {count}; echo {words!r} >&2; exit 1\n  fi ;;\nesac\n"
        'exec /bin/ln "$@"'
    )
    stand_ins(faults, ln=script)
    return f"{faults}:{side.bin}:/usr/bin:/bin"


def test_a_claim_that_cannot_be_written_is_not_a_lost_claim(side: JobSide) -> None:
    side.previous_verdict("100", states.VERDICT_CONTINUE)
    side.slurm_shows("100", states.COMPLETED)
    words = "ln: failed to create symbolic link 'claim': No space left on device"
    link = side.run("200", 1, "100", path=ln_fails(side, 99, words))
    assert link.returncode == 1
    assert side.bodies_run() == [] and not side.events("claim_lost")
    (failed,) = side.events("claim_failed")
    assert failed["error"] == words
    assert "cannot claim job 100" in link.stderr
    assert side.chain.ended() == states.CHAIN_FAILED


def test_a_claim_that_fails_once_is_asked_again(side: JobSide) -> None:
    side.previous_verdict("100", states.VERDICT_CONTINUE)
    side.slurm_shows("100", states.COMPLETED)
    words = "ln: failed to create symbolic link 'claim': Stale file handle"
    link = side.run("200", 1, "100", path=ln_fails(side, 1, words))
    assert link.returncode == 0 and side.bodies_run() == ["200"]
    assert [e["job"] for e in side.events("claimed")] == ["200"]
    assert (side.chain.link_dir("100") / "claim").readlink() == Path("200")


QOS_LIMIT = (
    "sbatch: error: QOSMaxSubmitJobPerUserLimit\n"
    "sbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job submit "
    "limit, user's size and/or time limits)"
)


def refuse_sbatch(side: JobSide, times: int) -> None:
    """sbatch refuses the first `times` submissions with Slurm's words for a QOS submit limit."""
    count = side.tmp / "refusals"
    side.on_call(
        "sbatch",
        f'n=$(cat {count} 2>/dev/null || echo 0)\nif [ "$n" -lt {times} ]; then\n'
        f'  echo $((n + 1)) > {count}; printf "%s\\n" {QOS_LIMIT!r} >&2; exit 1\nfi',
    )


def test_a_refused_successor_does_not_hold_the_script_back_and_is_queued_while_it_runs(
    tmp_path: Path,
) -> None:
    # Measured before: the body started 300 s late, and ran with no successor.
    side = JobSide(tmp_path, settings={"LONGRUN_REFUSED_RETRY_SECONDS": "1"})
    refuse_sbatch(side, 2)
    side.body_runs("sleep 4")
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("100", 0)
    (refused,) = side.events("successor_refused")
    assert "QOSMaxSubmitJobPerUserLimit" in refused["error"]
    started = side.events("link_started")[0]["t"]
    body = side.events("body_started")[0]["t"]
    assert float(body) - float(started) < 3, "the script waited for the refused successor"
    assert [e["successor"] for e in side.events("successor_queued")] == ["300"]
    assert (side.chain.link_dir("100") / "successor").read_text().strip() == "300"
    assert not side.events("chain_stalled")
    assert len(side.submitted()) == 3  # one refused at the start, one by the retrier, then queued


def test_a_successor_refused_until_the_end_says_why_the_chain_stalls(tmp_path: Path) -> None:
    side = JobSide(tmp_path, settings={"LONGRUN_REFUSED_RETRY_SECONDS": "1"})
    refuse_sbatch(side, 1000)
    side.body_runs("sleep 3")
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    link = side.run("100", 0)
    (stalled,) = side.events("chain_stalled")
    assert "Job violates accounting/QOS policy" in stalled["reason"]
    assert "refused the successor" in link.stderr
    assert len(side.events("successor_refused")) == 1  # said once, tried again quietly
    assert len(side.submitted()) >= 2


def failed_then_ended(side: JobSide, state: str) -> None:
    """A two-node link whose script fails at once; 7 s later Slurm ends the job in `state`
    (its SIGTERM comes while the link waits to learn whether a node was lost)."""
    side.slurm_shows("ended", state)
    (side.bin / "scontrol-config").write_text("SlurmdTimeout           = 300 sec\n")
    side.partition_has("allocated", "allocated")
    record = (side.bin / "scontrol-ended").read_text().replace("JobId=ended", "JobId=100")
    (side.bin / "ended-record").write_text(record)
    side.body_runs(
        f"(sleep 7; cp {side.bin}/ended-record {side.bin}/scontrol-100; kill -TERM $PPID) &"
    )
    side.body_exits(3)


def test_a_time_limit_during_the_wait_for_a_lost_node_leaves_the_failure_standing(
    tmp_path: Path,
) -> None:
    # Measured before: the TIMEOUT SIGTERM during the wait made a genuine failure `interrupted`,
    # and the chain went on.
    side = JobSide(tmp_path, settings={"LONGRUN_NODE_WAIT_SECONDS": "20"})
    failed_then_ended(side, states.TIMEOUT)
    side.run("100", 0, slurm_env={"SLURM_JOB_NUM_NODES": "2", "SLURM_JOB_NODELIST": "a,b"})
    (check,) = side.events("node_check")
    assert check["seconds"] == "20"  # SlurmdTimeout + 30 s is longer: the setting bounds it
    (verdict,) = side.events("verdict")
    assert verdict["verdict"] == states.VERDICT_FAILED
    assert side.chain.ended() == states.CHAIN_FAILED
    assert len(side.calls("sinfo")) <= 3  # 5, then 10 s apart, not every 5 s


def test_a_node_failure_during_that_wait_is_a_lost_node(tmp_path: Path) -> None:
    side = JobSide(tmp_path, settings={"LONGRUN_NODE_WAIT_SECONDS": "20"})
    failed_then_ended(side, states.NODE_FAIL)
    side.run("100", 0, slurm_env={"SLURM_JOB_NUM_NODES": "2", "SLURM_JOB_NODELIST": "a,b"})
    (verdict,) = side.events("verdict")
    assert verdict["verdict"] == states.VERDICT_INTERRUPTED
    assert side.chain.ended() is None


def test_the_wait_for_a_lost_node_is_the_sites_slurmd_timeout_and_30_s(tmp_path: Path) -> None:
    side = JobSide(tmp_path, settings={"LONGRUN_NODE_WAIT_SECONDS": "330"})
    (side.bin / "scontrol-config").write_text("SlurmdTimeout           = 2 sec\n")
    side.partition_has("allocated", "down*")  # the second node is down at the first look
    side.body_exits(3)
    side.run("100", 0, slurm_env={"SLURM_JOB_NUM_NODES": "2", "SLURM_JOB_NODELIST": "a,b"})
    assert [e["seconds"] for e in side.events("node_check")] == ["32"]
    assert len(side.calls("sinfo")) == 1
    assert side.events("verdict")[0]["verdict"] == states.VERDICT_INTERRUPTED


def test_a_link_whose_successor_claimed_it_while_it_ran_stops_its_script(tmp_path: Path) -> None:
    # Slurm gave up on the node (NODE_FAIL) while the link's processes ran on, and released the
    # successor, which claimed the link: the link sees it at its next beat and stops its script.
    side = JobSide(tmp_path, settings={"LONGRUN_HEARTBEAT_SECONDS": "1"})
    finished = side.tmp / "finished"
    claim = side.chain.link_dir("100") / "claim"
    side.body_runs(f"sleep 1; ln -s 200 {claim}; sleep 20; touch {finished}")
    side.run("100", 0)
    assert not finished.exists(), "the orphan's script ran on"
    assert [e["successor"] for e in side.events("orphan_stopped")] == ["200"]
    assert not side.events("verdict") and side.chain.ended() is None
    assert (side.chain.link_dir("100") / "heartbeat").exists()


def test_a_link_after_a_lost_node_waits_until_the_old_script_has_stopped(tmp_path: Path) -> None:
    side = JobSide(tmp_path, settings={"LONGRUN_HEARTBEAT_SECONDS": "1"})
    side.queued_jobs_pend()  # (the successor is looked at again after the wait)
    side.slurm_shows("100", states.NODE_FAIL)
    heartbeat = side.chain.link_dir("100") / "heartbeat"
    heartbeat.parent.mkdir(parents=True)
    stopped = side.tmp / "stopped"
    beating = subprocess.Popen(
        [
            "bash",
            "-c",
            f"for i in $(seq 16); do touch {heartbeat}; sleep 0.5; done; touch {stopped}",
        ]
    )
    try:
        side.run("200", 1, "100")
    finally:
        beating.wait(timeout=30)
    assert side.bodies_run() == ["200"]
    (wait,) = side.events("orphan_wait")
    assert wait["orphan"] == "100"
    body = float(side.events("body_started")[0]["t"])
    assert body > stopped.stat().st_mtime, "the script started while the old one still beat"
    # The successor is queued before the wait (a link that dies in it still has one), and
    # found still queued after it.
    (queued,) = side.events("successor_queued")
    assert float(queued["t"]) <= float(wait["t"])


def test_a_requeued_link_judges_again_when_its_first_judgement_had_no_answer(
    tmp_path: Path,
) -> None:
    # The first run ran on no answer (run-warn); by its rerun Slurm answers CANCELLED: a
    # judgement made without Slurm's word is not kept.
    side = JobSide(tmp_path, settings={"LONGRUN_ANSWER_SECONDS": "1"})
    side.previous_verdict("100", states.VERDICT_TERMINATED)
    side.slurm_fails("100", NO_ANSWER)
    side.accounting_fails(NO_DATABASE)
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("200", 1, "100")
    assert side.bodies_run() == ["200"]
    assert not (side.chain.link_dir("200") / "judgement").exists()
    (side.bin / "scontrol-100.err").unlink()
    (side.bin / "sacct.err").unlink()
    side.slurm_shows("100", states.CANCELLED)
    side.run("200", 1, "100", slurm_restarts=1)
    assert side.bodies_run() == ["200"], "the rerun ran the body after a cancel"
    assert side.chain.ended() == states.CHAIN_CANCELLED


def test_a_kept_judgement_keeps_what_it_learned_of_the_previous_link(side: JobSide) -> None:
    side.previous_verdict("100", states.VERDICT_TERMINATED)
    side.slurm_shows("100", states.PREEMPTED, preempted=True)
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("200", 1, "100")
    forgotten(side, "100")
    side.body_runs('echo "$SLURM_LONGRUN_PREVIOUS_STATE $SLURM_LONGRUN_PREVIOUS_VERDICT" >> seen')
    side.run("200", 1, "100", slurm_restarts=1, cwd=side.tmp)
    kept = [e for e in side.events("judged") if e.get("kept") == "1"]
    assert [(e["slurm_state"], e["preempted"], e["verdict"]) for e in kept] == [
        (states.PREEMPTED, "1", states.VERDICT_TERMINATED)
    ]
    assert (side.tmp / "seen").read_text() == f"{states.PREEMPTED} {states.VERDICT_TERMINATED}\n"


def test_an_unanswered_term_long_before_the_pre_timeout_time_is_not_the_check(
    tmp_path: Path,
) -> None:
    # --signal=B:TERM@60: Slurm sends it 60-120 s before the end; a TERM an hour before, with
    # no answer from slurmctld, is taken as a stop: the script never starts after it.
    side = JobSide(tmp_path, argv=["--signal=B:TERM@60"])
    side.on_call("sbatch", f'echo {NO_ANSWER!r} > "$dir/scontrol-100.err"; kill -TERM "$PPID"')
    side.run("100", 0, slurm_env={"SLURM_JOB_END_TIME": str(int(time.time()) + 3600)})
    assert side.bodies_run() == []
    assert not side.events("pretimeout_signal")
    assert [e["answered"] for e in side.events("sigterm")] == ["0"]


def test_a_cancel_seen_while_the_successor_is_submitted_cancels_that_successor(
    tmp_path: Path,
) -> None:
    side = JobSide(tmp_path)
    cancel_seen(side, restarts=0)
    side.body_runs("")
    side.on_call(
        "sbatch",
        'cp "$dir/cancelled-record" "$dir/scontrol-100"; kill -TERM "$PPID"',
    )
    side.run("100", 0, slurm_env={"SLURM_JOB_END_TIME": str(int(time.time()) + 600)})
    assert side.chain.ended() == states.CHAIN_CANCELLED
    assert side.bodies_run() == []
    assert side.calls("scancel") == ["scancel 300"]


def test_a_sigterm_during_the_wait_for_an_answer_queues_the_successor_at_once(
    tmp_path: Path,
) -> None:
    # The previous link left a heartbeat and Slurm does not answer; the SIGTERM comes while
    # this link waits: it neither waits on (for the answer, for the old script) nor runs the
    # script; its successor is queued within the time Slurm gives (found by the e2e suite: the
    # wait for the old script's heartbeat outlasted GraceTime + KillWait).
    side = JobSide(
        tmp_path, settings={"LONGRUN_ANSWER_SECONDS": "60", "LONGRUN_HEARTBEAT_SECONDS": "10"}
    )
    (side.chain.link_dir("100")).mkdir(parents=True)
    (side.chain.link_dir("100") / "heartbeat").touch()
    side.slurm_fails("100", NO_ANSWER)
    side.accounting_fails(NO_DATABASE)
    side.on_call(
        "scontrol",
        f'if [ "${{*: -1}}" = 100 ] && [ ! -e "$dir/termed" ]; then touch "$dir/termed"; '
        f'echo {NO_ANSWER!r} > "$dir/scontrol-200.err"; link=$PPID; '
        # (inside $(...) the caller may be a subshell of the link)
        'up=$(ps -o ppid= -p "$PPID" | tr -d " "); '
        'case $(ps -o args= -p "$up") in *link.sh*) link=$up ;; esac; kill -TERM "$link"; fi',
    )
    began = time.monotonic()
    side.run("200", 1, "100")
    assert time.monotonic() - began < 15, "the link waited on after the SIGTERM"
    assert [e["answered"] for e in side.events("sigterm")] == ["0"]
    assert [e["successor"] for e in side.events("successor_queued")] == ["300"]
    assert side.bodies_run() == [] and not side.events("orphan_wait")


def test_an_exit_0_while_slurm_delivers_a_signal_completes_the_chain(side: JobSide) -> None:
    # slurmctld shows SIGNALING while it delivers a --signal (here: the pre-timeout signal went
    # out as the script ended, with a one-minute limit; seen on 22.05): the job still runs, so
    # an exit 0 is the end of the work, not Slurm ending the job (which gave one link too many).
    side.slurm_shows("signaling", "SIGNALING")
    (side.bin / "signaling-record").write_text(
        (side.bin / "scontrol-signaling").read_text().replace("JobId=signaling", "JobId=100")
    )
    side.body_runs(f"cp {side.bin}/signaling-record {side.bin}/scontrol-100")
    side.run("100", 0)
    (verdict,) = side.events("verdict")
    assert (verdict["verdict"], verdict["slurm_state"]) == (states.VERDICT_COMPLETED, "SIGNALING")
    assert side.chain.ended() == states.CHAIN_COMPLETED
