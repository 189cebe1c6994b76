"""The wait for the script of a link on a lost node (an orphan), at every awkward moment.

Job 100 lost its node (NODE_FAIL) but its script runs on and beats (slurmd hung, or the node
cut off from slurmctld); job 200 continues it, queues its successor 300 and then waits until
100's heartbeat is still before it runs its own script. Found by a review that tried to break
the move of that wait after the successor's submission: the duty to wait must pass to 300 when
200 ends during the wait, and nothing may cut the wait short but a SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from jobside import JobSide

from longrun import protocol, states
from longrun.learning import LearningOptions
from longrun.wrapper_options import WrapperOptions

T = TypeVar("T")
FAST = {"LONGRUN_HEARTBEAT_SECONDS": "1"}


def orphan_beats(
    side: JobSide, job: str, beats: int, period: float
) -> tuple[subprocess.Popen[bytes], Path]:
    """The script of `job` runs on, cut off from slurmctld: its heartbeat changes every
    `period` s, `beats` times; then the file it returns is touched."""
    heartbeat = side.chain.link_dir(job) / "heartbeat"
    heartbeat.parent.mkdir(parents=True, exist_ok=True)
    stopped = side.tmp / f"stopped-{job}"
    loop = f"for i in $(seq {beats}); do touch {heartbeat}; sleep {period}; done; touch {stopped}"
    beating = subprocess.Popen(["bash", "-c", loop])
    return beating, stopped


def start(side: JobSide, job: str, restart: int, previous: str) -> subprocess.Popen[str]:
    """A link started in the background, in a process group of its own; the jobs it queues
    show as PENDING (it looks at its successor again after the wait)."""
    side.queued_jobs_pend()
    side.slurm_shows(job, states.RUNNING)
    return subprocess.Popen(
        side.command(job, restart, previous), env=side.environ(job),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def waiting_link(
    side: JobSide, beats: int, period: float
) -> tuple[subprocess.Popen[str], subprocess.Popen[bytes], Path]:
    """Job 100 lost its node and its script beats on; link 200 has begun to wait for it. The
    link, the beating script, and the file touched once it stops."""
    side.slurm_shows("100", states.NODE_FAIL)
    beating, stopped = orphan_beats(side, "100", beats=beats, period=period)
    link = start(side, "200", 1, "100")
    try:
        until(lambda: of(side, "orphan_wait", "200"))
    except AssertionError:
        beating.kill()
        os.killpg(link.pid, signal.SIGKILL)
        raise
    return link, beating, stopped


def until(probe: Callable[[], T], seconds: float = 20.0) -> T:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError("timed out")


def of(side: JobSide, kind: str, job: str) -> list[dict[str, str]]:
    return [e for e in side.events(kind) if e["job"] == job]


def said_by(side: JobSide, job: str) -> list[str]:
    return [e["event"] for e in side.chain.read_events() if e["job"] == job]


def assert_started_after_the_last_beat(side: JobSide, job: str) -> None:
    body = float(of(side, "body_started", job)[0]["t"])
    last_beat = (side.chain.link_dir("100") / "heartbeat").stat().st_mtime
    assert body > last_beat, (
        f"job {job}'s script started {last_beat - body:.1f}s before job 100's script last beat"
        f" (its orphan_wait events: {of(side, 'orphan_wait', job)})"
    )


def test_the_successor_of_a_link_killed_in_the_wait_waits_in_its_stead(tmp_path: Path) -> None:
    # 200 dies outright in the wait (its own node fails: SIGKILL); Slurm releases 300, which
    # judges 200 and finds in 200's folder that 100's script may still run.
    side = JobSide(tmp_path, settings=FAST)
    link, beating, _ = waiting_link(side, beats=30, period=0.5)
    try:
        assert [e["successor"] for e in of(side, "successor_queued", "200")] == ["300"]
        os.killpg(link.pid, signal.SIGKILL)
        link.wait(timeout=10)
        side.slurm_shows("200", states.NODE_FAIL)
        side.run("300", 2, "200")
        assert side.bodies_run() == ["300"]
    finally:
        beating.wait(timeout=30)
    assert [e["orphan"] for e in of(side, "orphan_wait", "300")] == ["100"]
    assert_started_after_the_last_beat(side, "300")


def test_the_successor_of_a_link_preempted_in_the_wait_waits_in_its_stead(tmp_path: Path) -> None:
    # 200 is preempted (SIGTERM) in the wait: it runs nothing; 300 judges 200 PREEMPTED (run)
    # and still waits for 100's script, which 200 never saw stop.
    side = JobSide(tmp_path, settings=FAST)
    link, beating, _ = waiting_link(side, beats=30, period=0.5)
    try:
        side.slurm_shows("200", states.PREEMPTED, preempted=True)
        termed = time.monotonic()
        os.kill(link.pid, signal.SIGTERM)
        link.wait(timeout=30)
        assert time.monotonic() - termed < 8, "the wait went on after the SIGTERM"
        assert [e["successor"] for e in of(side, "successor_queued", "200")] == ["300"]
        side.run("300", 2, "200")
        assert side.bodies_run() == ["300"]
    finally:
        beating.wait(timeout=30)
    assert_started_after_the_last_beat(side, "300")


def cut_off_in_the_wait(side: JobSide) -> None:
    """200 itself is cut off from slurmctld during its wait (alive, the folder shared): Slurm
    says NODE_FAIL and releases 300, which claims 200 and runs its script (12 s)."""
    side.body_runs("sleep 12")
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.slurm_shows("100", states.NODE_FAIL)
    beating, _ = orphan_beats(side, "100", beats=12, period=0.5)
    link = start(side, "200", 1, "100")
    successor = link
    try:
        until(lambda: of(side, "orphan_wait", "200"))
        assert [e["successor"] for e in of(side, "successor_queued", "200")] == ["300"]
        side.slurm_shows("200", states.NODE_FAIL)  # slurmctld gave up on 200's node
        successor = start(side, "300", 2, "200")
        link.wait(timeout=60)
        successor.wait(timeout=60)
    finally:
        beating.kill()
        beating.wait()
        for process in (link, successor):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    assert [e["previous"] for e in of(side, "claimed", "300")] == ["200"]


def test_a_link_cut_off_in_the_wait_runs_nothing_once_its_successor_claimed_it(
    tmp_path: Path,
) -> None:
    # 200 ends its wait and finds 300's claim: its script does not run.
    side = JobSide(tmp_path, settings=FAST)
    cut_off_in_the_wait(side)
    assert side.bodies_run() == ["300"]
    (skipped,) = of(side, "body_skipped", "200")
    assert "job 300 continues this link already" in skipped["reason"]


def test_a_signal_to_the_batch_shell_does_not_cut_the_wait_short(tmp_path: Path) -> None:
    # A trapped signal (USR2 to the batch shell, as `scancel --batch --signal=USR2`; the
    # pre-timeout signal does the same) ends a pause early: the wait counts time, not pauses.
    side = JobSide(tmp_path, settings=FAST)
    link, beating, _ = waiting_link(side, beats=8, period=2)
    try:
        os.kill(link.pid, signal.SIGUSR2)
        link.wait(timeout=60)
    finally:
        beating.wait(timeout=30)
    assert_started_after_the_last_beat(side, "200")


def test_a_successor_cancelled_during_the_wait_stops_the_chain_after_this_link(
    tmp_path: Path,
) -> None:
    # A successor cancelled by the user means "stop after this link": it is looked at again
    # after a wait, which can last minutes.
    side = JobSide(tmp_path, settings=FAST)
    side.slurm_shows("100", states.NODE_FAIL)
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    beating, _ = orphan_beats(side, "100", beats=6, period=0.5)
    link = start(side, "200", 1, "100")
    try:
        until(lambda: of(side, "orphan_wait", "200"))
        side.slurm_shows("300", states.CANCELLED)  # scancel 300
        link.wait(timeout=60)
    finally:
        beating.wait(timeout=30)
    assert side.bodies_run() == ["200"]
    assert [e["successor"] for e in of(side, "successor_stopped", "200")] == ["300"]
    assert side.chain.ended() == states.CHAIN_CANCELLED


def test_a_refused_successor_is_tried_during_the_wait_and_a_sigterm_then_says_the_chain_stalls(
    tmp_path: Path,
) -> None:
    # sbatch refuses the successor for a limit; 200 is preempted in the wait: no script, and
    # the chain says that it stalls (a trace for the watcher and `longrun status`).
    side = JobSide(tmp_path, settings={**FAST, "LONGRUN_REFUSED_RETRY_SECONDS": "1"})
    side.slurm_shows("100", states.NODE_FAIL)
    side.on_call("sbatch", 'echo "sbatch: error: MaxSubmitJobsPerUser" >&2; exit 1')
    side.on_call("squeue", "exit 0")
    beating, _ = orphan_beats(side, "100", beats=20, period=0.5)
    link = start(side, "200", 1, "100")
    try:
        until(lambda: of(side, "orphan_wait", "200"))
        until(lambda: len(side.calls("sbatch")) > 1, seconds=30)  # the retrier tried again
        side.slurm_shows("200", states.PREEMPTED, preempted=True)
        os.kill(link.pid, signal.SIGTERM)
        link.wait(timeout=30)
    finally:
        beating.wait(timeout=30)
    assert not side.bodies_run()
    assert "chain_stalled" in said_by(side, "200"), said_by(side, "200")


def test_an_end_recorded_during_the_wait_cancels_the_early_successor(tmp_path: Path) -> None:
    side = JobSide(tmp_path, settings=FAST)
    side.slurm_shows("100", states.NODE_FAIL)
    beating, _ = orphan_beats(side, "100", beats=6, period=0.5)
    link = start(side, "200", 1, "100")
    until(lambda: of(side, "orphan_wait", "200"))
    side.chain.set_ended(states.CHAIN_CANCELLED)
    link.wait(timeout=60)
    beating.wait(timeout=30)
    assert side.bodies_run() == []
    assert [e["successor"] for e in of(side, "successor_cancelled", "200")] == ["300"]


def test_a_hand_over_comes_after_the_wait(tmp_path: Path) -> None:
    check = tmp_path / "check.sh"
    check.write_text("#!/bin/bash\nexit 1\n")
    check.chmod(0o755)
    side = JobSide(
        tmp_path, WrapperOptions(learning=LearningOptions(node_check=str(check))), settings=FAST
    )
    side.slurm_shows("100", states.NODE_FAIL)
    beating, stopped = orphan_beats(side, "100", beats=6, period=0.5)
    link = start(side, "200", 1, "100")
    link.wait(timeout=60)
    beating.wait(timeout=30)
    said = said_by(side, "200")
    assert side.bodies_run() == []
    assert said.index("successor_queued") < said.index("orphan_wait") < said.index("handed_over")
    assert float(of(side, "handed_over", "200")[0]["t"]) > stopped.stat().st_mtime


# --- Found by a second review -----------------------------------------------------------------
def stand_in(side: JobSide, name: str, script: str) -> None:
    """A command of the test's own, first on the link's PATH (the stand-in Slurm's folder)."""
    command = side.bin / name
    command.write_text(f"#!/bin/bash\n{script}\n")
    command.chmod(0o755)


def test_jobs_waited_for_that_cannot_be_written_down_are_said(tmp_path: Path) -> None:
    # The orphans file cannot be written (a full or failing file system, twice): the link
    # still waits, and says that a successor would not know to wait should it end meanwhile.
    side = JobSide(tmp_path, settings=FAST)
    stand_in(side, "mv", 'case "${*: -1}" in */orphans) exit 1 ;; esac; exec /usr/bin/mv "$@"')
    side.slurm_shows("100", states.NODE_FAIL)
    beating, _ = orphan_beats(side, "100", beats=8, period=0.5)
    link = start(side, "200", 1, "100")
    try:
        link.wait(timeout=60)
    finally:
        beating.wait(timeout=30)
    assert_started_after_the_last_beat(side, "200")
    (warning,) = [
        e for e in of(side, "warning", "200") if "could not be written down" in e["message"]
    ]
    assert "(100)" in warning["message"]


def test_a_requeued_link_keeps_the_wait_its_first_run_wrote_down(tmp_path: Path) -> None:
    # 200's first run was killed in its wait; Slurm requeued 200 and meanwhile forgot 100 (no
    # accounting either): the rerun still waits for 100's script, from its own orphans file.
    side = JobSide(tmp_path, settings=FAST)
    link, beating, _ = waiting_link(side, beats=30, period=0.5)
    try:
        os.killpg(link.pid, signal.SIGKILL)
        link.wait(timeout=10)
        assert (side.chain.link_dir("200") / "orphans").read_text() == "100\n"
        (side.bin / "scontrol-100").unlink()  # slurmctld forgot 100 (MinJobAge) ...
        (side.bin / "sacct-100").write_text("")  # ... and there is no accounting record
        side.run("200", 1, "100", slurm_restarts=1)
        assert side.bodies_run() == ["200"]
    finally:
        beating.wait(timeout=30)
    assert_started_after_the_last_beat(side, "200")
    assert not (side.chain.link_dir("200") / "orphans").exists()


def test_a_successor_the_retrier_queued_during_the_wait_is_the_only_one(tmp_path: Path) -> None:
    # sbatch refuses the successor once (a limit); the retrier queues it during the wait: no
    # second retrier, no second successor for the same link.
    side = JobSide(tmp_path, settings={**FAST, "LONGRUN_REFUSED_RETRY_SECONDS": "1"})
    side.slurm_shows("100", states.NODE_FAIL)
    side.on_call(
        "sbatch",
        '[ -e "$dir/refused" ] || { touch "$dir/refused";'
        ' echo "sbatch: error: MaxSubmitJobsPerUser" >&2; exit 1; }',
    )
    side.on_call("squeue", "exit 0")
    side.body_runs("sleep 5")
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    beating, _ = orphan_beats(side, "100", beats=8, period=0.5)
    link = start(side, "200", 1, "100")
    try:
        link.wait(timeout=60)
    finally:
        beating.wait(timeout=30)
    assert side.bodies_run() == ["200"]
    queued = [e["successor"] for e in side.events("successor_queued") if e["job"] == "200"]
    assert queued == ["300"], f"successors queued for link 200: {queued}"


def test_one_failed_look_at_the_claim_after_the_wait_does_not_run_a_second_script(
    tmp_path: Path,
) -> None:
    # As the cut-off link above, but 200's look at its claim fails once (a flaky file system).
    side = JobSide(tmp_path, settings=FAST)
    marker = tmp_path / "readlink-failed"
    once = f"[ -e {marker} ] || {{ touch {marker}; exit 1; }}"
    stand_in(
        side, "readlink",
        f'case "${{*: -1}}" in */links/200/claim) {once} ;; esac\nexec /usr/bin/readlink "$@"',
    )  # fmt: skip
    cut_off_in_the_wait(side)
    assert side.bodies_run() == ["300"]


@pytest.mark.parametrize("slurm_restarts", [0, 1])
def test_files_that_are_not_there_put_nothing_in_the_jobs_output(
    tmp_path: Path, slurm_restarts: int
) -> None:
    # No orphans file of the previous link (or of this job's earlier run), no judgement of an
    # earlier run, no progress file yet: the shell's "No such file or directory" for a failed
    # redirection would go to the job's output, which is the user's (found by the e2e suite).
    side = JobSide(tmp_path, WrapperOptions(progress_file="progress"), settings=FAST)
    side.slurm_shows("100", states.NODE_FAIL)
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    ran = side.run("200", 1, "100", slurm_restarts=slurm_restarts)
    assert side.bodies_run() == ["200"]
    assert "No such file" not in ran.stderr, ran.stderr
