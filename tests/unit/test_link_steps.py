"""The job side's safety steps, run whole: the rendered link script with its library, as Slurm
would start it, against stand-in Slurm commands whose answers each test chooses.

These tests prove behaviour without a cluster (a link that loses the claim runs no body, a
requeued link finds its own claim, the --retry-failed budget, an end that skips the body, the
judging of the previous link under each kind of answer). That the real Slurm gives these answers
is proven in tests/e2e.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from jobside import JobSide

from longrun import protocol, states
from longrun.plan import WrapperOptions
from slurmguard import stand_ins


def test_two_jobs_racing_for_one_claim_run_one_body(side: JobSide) -> None:
    side.previous_verdict("100", states.VERDICT_CONTINUE)
    side.slurm_shows("100", states.COMPLETED)
    for job in ("200", "201"):
        side.slurm_shows(job, states.RUNNING)
    runs = [
        subprocess.Popen(
            side.command(job, 1, "100"),
            env=side.environ(job),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for job in ("200", "201")
    ]
    codes = [run.wait(timeout=60) for run in runs]
    assert codes == [0, 0]
    assert len(side.bodies_run()) == 1, "two links ran the body for one predecessor"
    winner = side.bodies_run()[0]
    loser = {"200", "201"} - {winner}
    assert [e["job"] for e in side.events("claimed")] == [winner]
    assert [e["job"] for e in side.events("claim_lost")] == sorted(loser)
    assert (side.chain.link_dir("100") / "claim").readlink() == Path(winner)


def test_a_later_job_that_finds_the_claim_taken_runs_nothing(side: JobSide) -> None:
    side.previous_verdict("100", states.VERDICT_CONTINUE)
    side.slurm_shows("100", states.COMPLETED)
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    assert side.run("200", 1, "100").returncode == 0
    submitted = len(side.submitted())
    link = side.run("201", 1, "100")
    assert link.returncode == 0
    assert side.bodies_run() == ["200"]
    assert "job 200 already continues job 100" in link.stderr
    assert len(side.submitted()) == submitted, "the claim's loser queued a successor"


def test_a_requeued_job_finds_its_own_claim_and_runs_again(side: JobSide) -> None:
    side.previous_verdict("100", states.VERDICT_CONTINUE)
    side.slurm_shows("100", states.COMPLETED)
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("200", 1, "100")
    side.slurm_shows("300", states.PENDING)  # the successor it queued is still waiting
    side.run("200", 1, "100", slurm_restarts=1)  # Slurm requeued job 200: the same job id
    assert side.bodies_run() == ["200", "200"]
    assert len(side.submitted()) == 1, "a requeued link queued a second successor"
    assert side.events("claim_lost") == []


@pytest.mark.parametrize(
    ("stop", "end"),
    [(states.DEADLINE, states.CHAIN_DEADLINE), (states.CANCELLED, states.CHAIN_CANCELLED)],
)
def test_a_successor_that_ended_before_it_ran_ends_the_chain_after_this_link(
    side: JobSide, stop: str, end: str
) -> None:
    # Slurm removes a queued successor that cannot end before --deadline (24.11 does it while
    # the link still runs); a user may cancel it. The pre-timeout check finds it ended.
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.slurm_shows("300", stop)
    side.signal_during_body()
    (side.bin / "next-id").write_text("300\n")
    link = side.run("100", 0)
    assert link.returncode == 0
    assert side.bodies_run() == ["100"]
    assert len(side.submitted()) == 1, "a new successor replaced one that had ended " + stop
    assert [e["state"] for e in side.events("successor_stopped")] == [stop]
    assert side.chain.ended() == end
    assert "the chain stopped after link 1" in side.events("chain_ended")[0]["reason"]


def test_a_failed_body_does_not_retry_when_its_successor_was_cancelled(tmp_path: Path) -> None:
    side = JobSide(tmp_path, WrapperOptions(retry_failed=2))
    side.body_exits(3)
    side.slurm_shows("300", states.CANCELLED)
    side.signal_during_body()
    assert side.run("100", 0).returncode == 3
    assert side.chain.ended() == states.CHAIN_FAILED


@pytest.mark.parametrize(("retries", "runs"), [(0, True), (1, True), (2, False)])
def test_the_retry_budget_allows_exactly_retry_failed_retries(
    tmp_path: Path, retries: int, runs: bool
) -> None:
    side = JobSide(tmp_path, WrapperOptions(retry_failed=2))
    side.previous_verdict("100", states.VERDICT_FAILED)
    side.slurm_shows("100", states.FAILED)
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("200", 1, "100", retries=retries)
    if runs:
        assert side.bodies_run() == ["200"]
        assert [e["attempt"] for e in side.events("retry")] == [str(retries + 1)]
        # The successor carries the retries used so far.
        assert side.submitted()[0].endswith(f"--retries={retries + 1}")
        assert side.chain.ended() is None
    else:
        assert side.bodies_run() == []
        assert side.chain.ended() == states.CHAIN_FAILED
        assert side.submitted() == []


def test_a_failed_body_with_retries_left_continues_and_without_ends_failed(
    tmp_path: Path,
) -> None:
    side = JobSide(tmp_path, WrapperOptions(retry_failed=1))
    side.body_exits(3)
    assert side.run("100", 0).returncode == 3
    assert side.chain.ended() is None and side.chain.verdict("100") == states.VERDICT_FAILED
    assert side.submitted()[0].endswith("--retries=0")  # the retry is counted when it is used
    side.slurm_shows("100", states.FAILED)
    assert side.run("300", 1, "100", retries=0).returncode == 3
    assert [e["attempt"] for e in side.events("retry")] == ["1"]
    assert side.chain.ended() == states.CHAIN_FAILED
    assert side.bodies_run() == ["100", "300"]


@pytest.mark.parametrize(
    ("verdict", "end"),
    [
        (states.VERDICT_COMPLETED, states.CHAIN_COMPLETED),
        (states.VERDICT_ENDED, states.CHAIN_COMPLETED),
    ],
)
def test_an_end_skips_the_body_and_queues_nothing(side: JobSide, verdict: str, end: str) -> None:
    side.previous_verdict("100", verdict)
    side.slurm_shows("100", states.COMPLETED)
    assert side.run("200", 1, "100").returncode == 0
    assert side.bodies_run() == []
    assert side.chain.ended() == end
    assert side.submitted() == []


def test_a_recorded_end_stops_the_next_link_before_its_body(side: JobSide) -> None:
    side.previous_verdict("100", states.VERDICT_CONTINUE)
    side.slurm_shows("100", states.COMPLETED)
    side.chain.set_ended(states.CHAIN_CANCELLED)
    assert side.run("200", 1, "100").returncode == 0
    assert side.bodies_run() == []
    assert side.chain.ended() == states.CHAIN_CANCELLED


def test_the_first_recorded_end_stands(side: JobSide) -> None:
    # `longrun cancel` recorded CANCELLED; then the previous link's verdict says the work is
    # done: the link ends the chain too, and the recorded end stays CANCELLED.
    side.chain.set_ended(states.CHAIN_CANCELLED)
    side.previous_verdict("100", states.VERDICT_COMPLETED)
    side.slurm_shows("100", states.COMPLETED)
    side.run("200", 1, "100")
    assert side.chain.ended() == states.CHAIN_CANCELLED
    kept = side.events("chain_end_kept")
    assert [(e["state"], e["recorded"]) for e in kept] == [
        (states.CHAIN_COMPLETED, states.CHAIN_CANCELLED)
    ]
    assert side.bodies_run() == []


@pytest.mark.parametrize(
    ("answer", "body", "end"),
    [
        ("TIMEOUT", True, None),  # definite: a time limit continues
        ("NODE_FAIL", True, None),
        ("FAILED", False, states.CHAIN_FAILED),  # definite: the work failed
        ("CANCELLED", False, states.CHAIN_CANCELLED),
        ("FAILED+preempted", True, None),  # exited in its GraceTime: PreemptTime tells
        ("no answer", True, None),  # slurmctld and the accounting did not answer
        ("unknown job", True, None),  # Slurm no longer knows the job
    ],
)
def test_the_judge_of_a_link_that_left_no_verdict(
    side: JobSide, answer: str, body: bool, end: str | None
) -> None:
    if answer == "no answer":
        side.slurm_fails("100", "slurm_load_jobs error: Socket timed out on send/recv operation")
        side.accounting_fails("sacct: error: Problem talking to the database")
    elif answer != "unknown job":
        state, _, preempted = answer.partition("+")
        side.slurm_shows("100", state, preempted=bool(preempted))
    side.body_exits(0)
    side.run("200", 1, "100")
    assert side.bodies_run() == (["200"] if body else [])
    if body:
        assert side.chain.ended() == states.CHAIN_COMPLETED  # its own body finished the work
    else:
        assert side.chain.ended() == end
    judged = side.events("judged")[0]
    assert judged["slurm_state"] == ("unknown" if answer in {"no answer", "unknown job"} else state)
    if answer in {"no answer", "unknown job"}:
        assert [e["event"] for e in side.chain.read_events()].count("warning") == 1


def test_a_successor_slurm_forgot_is_unknown_while_the_accounting_does_not_answer(
    side: JobSide,
) -> None:
    # Past MinJobAge slurmctld says "Invalid job id" for the successor you cancelled, and
    # slurmdbd does not answer this once: unknown, not missing (no second successor).
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.signal_during_body()
    side.accounting_fails("sacct: error: Problem talking to the database: Connection refused")
    side.run("100", 0)
    assert len(side.submitted()) == 1, "a second successor was queued on one failed sacct call"
    assert [e["successor"] for e in side.events("successor_unchecked")] == ["300"]


def test_a_requeued_link_whose_successor_was_cancelled_still_runs_its_work(
    side: JobSide,
) -> None:
    # You cancelled successor 300 ("stop after this link"), the pre-timeout check found it;
    # then Slurm preempted the link and requeued it (same job id): it runs its script again.
    side.slurm_shows("300", states.CANCELLED)
    side.slurm_shows("100", states.PREEMPTED, preempted=True)
    preempted = side.bin / "scontrol-100.preempted"
    (side.bin / "scontrol-100").rename(preempted)
    side.body_runs(
        f'if [ "${{SLURM_RESTART_COUNT:-0}}" = 0 ]; then kill -USR1 $PPID; sleep 1; '
        f"cp {preempted} {side.bin}/scontrol-100; kill -TERM $PPID; sleep 2; exit 143; fi"
    )
    side.body_exits(0)
    side.run("100", 0)
    assert side.chain.ended() is None, "an interrupted link recorded the end of the chain"
    side.run("100", 0, slurm_restarts=1)
    assert side.bodies_run() == ["100", "100"], "the requeued link's work was dropped"
    assert side.chain.ended() == states.CHAIN_COMPLETED


def test_one_failed_stat_does_not_end_the_chain(side: JobSide) -> None:
    # NFS answers one stat with an error (a stale handle): asked again, the folder is fine.
    faults = side.tmp / "fault-bin"
    failed = side.tmp / "stat-failed"
    script = (
        f"if [ ! -e {failed} ]; then touch {failed}; "
        'echo "stat: cannot statx: Stale file handle" >&2; exit 1; fi\nexec /usr/bin/stat "$@"'
    )
    stand_ins(faults, stat=script)
    side.body_exits(0)
    link = side.run("100", 0, path=f"{faults}:{side.bin}:/usr/bin:/bin")
    assert failed.exists(), "the fault was not reached"
    assert link.returncode == 0 and side.bodies_run() == ["100"]
    assert side.chain.ended() == states.CHAIN_COMPLETED


def test_the_backoff_of_a_long_streak_stays_at_its_longest(side: JobSide) -> None:
    # A shift by 63 or more would overflow into a negative or short delay.
    side.previous_verdict("99", states.VERDICT_CONTINUE)
    (side.chain.link_dir("99") / "streak").write_text("65\n")
    side.slurm_shows("99", states.COMPLETED)
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("100", 1, "99")
    assert [(e["short_links"], e["seconds"]) for e in side.events("backoff")] == [("66", "600")]


def test_a_pre_timeout_signal_before_the_script_started_is_not_lost(side: JobSide) -> None:
    # The signal comes while the link submits its successor (a short time limit): the check
    # it asks for runs all the same, once the script is started.
    side.on_call("sbatch", 'kill -USR1 "$PPID"')  # sbatch's parent: the link
    side.slurm_shows("300", states.DEADLINE)  # removed by Slurm by the time of the check
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("100", 0)
    assert [e["signal"] for e in side.events("pretimeout_signal")] == ["USR1"]
    assert len(side.submitted()) == 1
    assert [e["state"] for e in side.events("successor_stopped")] == [states.DEADLINE]
    assert side.chain.ended() == states.CHAIN_DEADLINE


def test_a_cluster_without_accounting_answers_that_a_forgotten_successor_is_gone(
    side: JobSide,
) -> None:
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.signal_during_body()
    side.accounting_fails("sacct: error: Slurm accounting storage is disabled")
    side.run("100", 0)
    assert [e["successor"] for e in side.events("successor_missing")] == ["300"]
    assert len(side.submitted()) == 2  # the lost one replaced, as before accounting was asked
