"""How a chain is read, case by case: small event logs written by hand, each with the state,
the current job and the repair decision that must come out of it (the precedence rules of
longrun.chain_view and longrun.chain_actions.needs_repair, and the rule table's kinds)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from longrun import protocol, states
from longrun.chain_actions import needs_repair
from longrun.chain_record import ChainRecord
from longrun.chain_view import SlurmEnd, build_view
from longrun.slurm_output import QueueRow

META = ChainRecord(chain_id="20261130-120000-abcd", job_name="job.sh", max_restarts=1)


def event(kind: str, job: str, restart: int, epoch: int, **fields: Any) -> dict[str, Any]:
    return {"event": kind, "job": job, "restart_count": restart, "epoch": epoch, **fields}


def link(job: str, restart: int, successor: str | None = None) -> list[dict[str, Any]]:
    """A link that started and (if `successor`) queued its successor."""
    events = [event(protocol.LINK_STARTED, job, restart, 1000 + 100 * restart)]
    if successor:
        events.append(event(protocol.SUCCESSOR_QUEUED, job, restart, 1001, successor=successor))
    return events


def verdict(job: str, restart: int, said: str, exit_code: int, preempted: bool = False) -> list:
    epoch = 1050 + 100 * restart
    return [
        event(protocol.BODY_EXITED, job, restart, epoch, exit_code=str(exit_code)),
        event(protocol.VERDICT_RECORDED, job, restart, epoch, verdict=said, reason="",
              exit_code=str(exit_code), preempted="1" if preempted else "0"),
    ]  # fmt: skip


def sigterm(job: str, restart: int, said: str = states.VERDICT_TERMINATED) -> list:
    return [event(protocol.SIGTERM, job, restart, 1060 + 100 * restart, verdict=said)]


def row(job: str, state: str, preempted: bool = False) -> QueueRow:
    return QueueRow(job, state, "None", "0:05", "59:55", "2026-11-30T12:00:00", "N/A",
                    "2026-11-30T12:00:30" if preempted else "N/A")  # fmt: skip


@dataclass
class Case:
    name: str
    events: list[dict[str, Any]]
    state: str  # the chain's state
    ended: str | None = None  # the chain's `ended` file
    queue: dict[str, QueueRow] = field(default_factory=dict)  # squeue's rows of its jobs
    accounting: dict[str, str] = field(default_factory=dict)  # sacct's final states
    current: str | None = None  # the chain's current job
    last_state: str | None = None  # the last link's state
    last_why: str | None = None  # words the last link's reason must hold
    repair: bool = False  # would the watcher queue a successor?


CASES = [
    Case(
        "a cancelled last link at max restarts is a cancel, not the end of the restarts",
        [*link("100", 0, "200"), *verdict("100", 0, states.VERDICT_CONTINUE, 75),
         *link("200", 1), *sigterm("200", 1)],
        states.CHAIN_CANCELLED, accounting={"200": states.CANCELLED}, current="200",
        last_state=states.CANCELLED,
    ),
    Case(
        "a timed-out last link at max restarts ends the restarts",
        [*link("100", 0, "200"), *verdict("100", 0, states.VERDICT_CONTINUE, 75),
         *link("200", 1), *sigterm("200", 1, states.VERDICT_INTERRUPTED)],
        states.CHAIN_MAX_RESTARTS, accounting={"200": states.TIMEOUT}, last_state=states.TIMEOUT,
    ),
    Case(
        "a chain stopped by longrun cancel, while sacct shows CANCELLED",
        [*link("100", 0, "200"),
         event(protocol.CHAIN_ENDED, "", 0, 1070, state=states.CHAIN_CANCELLED,
               reason="cancelled with longrun cancel", by="longrun cancel", cancelled="100,200")],
        states.CHAIN_CANCELLED, ended=states.CHAIN_CANCELLED,
        accounting={"100": states.CANCELLED, "200": states.CANCELLED},
        last_state=states.CANCELLED, last_why="cancelled with longrun cancel",
    ),
    Case(
        "a preempted link that asked to continue and exited 143 ran as FAILED in Slurm",
        [*link("100", 0, "200"),
         *verdict("100", 0, states.VERDICT_CONTINUE, 143, preempted=True)],
        states.CHAIN_PENDING, queue={"200": row("200", states.PENDING)}, current="200",
        last_state=states.FAILED,
    ),
    Case(
        "a link that left no verdict and that only PreemptTime shows preempted is repaired",
        [*link("100", 0, "200"), *sigterm("100", 0)],
        states.CHAIN_STALLED, queue={"100": row("100", states.FAILED, preempted=True)},
        last_state=states.FAILED, repair=True,
    ),
    Case(
        "an interrupted link at max restarts whose state is not known yet is never repaired",
        [*link("100", 0, "200"), *verdict("100", 0, states.VERDICT_CONTINUE, 75),
         *link("200", 1), *sigterm("200", 1, states.VERDICT_INTERRUPTED)],
        states.CHAIN_STALLED, last_state=states.UNKNOWN, repair=False,
    ),
    Case(
        "a timed-out link with restarts left and nothing queued is repaired",
        [*link("100", 0, "200"), *sigterm("100", 0, states.VERDICT_INTERRUPTED)],
        states.CHAIN_STALLED, accounting={"100": states.TIMEOUT}, repair=True,
    ),
    Case(
        "a requeued link runs again: the queue's RUNNING wins over its earlier run in sacct",
        [*link("100", 0, "200"), *sigterm("100", 0, states.VERDICT_INTERRUPTED)],
        states.CHAIN_RUNNING, queue={"100": row("100", states.RUNNING),
                                     "200": row("200", states.PENDING)},
        accounting={"100": states.PREEMPTED}, current="100", last_state=states.RUNNING,
    ),
    Case(
        "the running successor is the current job, not its predecessor still completing",
        [*link("100", 0, "200"), *verdict("100", 0, states.VERDICT_CONTINUE, 75), *link("200", 1)],
        states.CHAIN_RUNNING, queue={"100": row("100", states.COMPLETING),
                                     "200": row("200", states.RUNNING)},
        current="200",
    ),
    Case(
        "a successor that longrun itself cancelled is no stop by the user",
        [*link("100", 0, "200"), *sigterm("100", 0, states.VERDICT_INTERRUPTED),
         event(protocol.JOBS_CANCELLED, "", 0, 1070, jobs="200", by="the watcher")],
        states.CHAIN_STALLED, accounting={"100": states.TIMEOUT, "200": states.CANCELLED},
        repair=True,
    ),
    Case(
        "a link cancelled by the link that ended the chain reads as that, whatever sacct says",
        [*link("100", 0, "200"), *verdict("100", 0, states.VERDICT_COMPLETED, 0),
         event(protocol.SUCCESSOR_CANCELLED, "100", 0, 1052, successor="200"),
         event(protocol.CHAIN_ENDED, "100", 0, 1052, state=states.CHAIN_COMPLETED,
               reason="the script finished (exit 0)")],
        states.CHAIN_COMPLETED, ended=states.CHAIN_COMPLETED,
        accounting={"100": states.COMPLETED, "200": states.CANCELLED},
        last_state=states.COMPLETED,
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_chain_reads_as_its_rules_say(case: Case) -> None:
    final = {job: SlurmEnd(state, "", "") for job, state in case.accounting.items()}
    view = build_view(META, case.events, case.ended, case.queue, final)
    assert view.state == case.state, view.reason
    if case.current is not None:
        assert view.current_job == case.current
    last = view.links[-1]
    if case.last_state is not None:
        assert last.state == case.last_state, last
    if case.last_why is not None:
        assert case.last_why in last.why, last
    assert needs_repair(view, case.queue, retries_left=True) is case.repair


def test_a_cancelled_successor_of_a_longrun_cancel_is_ours_not_the_users() -> None:
    # The same cancelled successor, by `longrun cancel` (recorded) or by the user (not).
    events = [*link("100", 0, "200"), *verdict("100", 0, states.VERDICT_CONTINUE, 75)]
    final = {"200": SlurmEnd(states.CANCELLED, "", "")}
    by_user = build_view(META, events, None, {}, final)
    assert by_user.state == states.CHAIN_CANCELLED
    assert "the successor job 200 was cancelled" in by_user.reason


@pytest.mark.parametrize("state", [states.PENDING, states.RUNNING, states.COMPLETING])
def test_no_repair_while_a_job_of_the_chain_is_in_the_queue(state: str) -> None:
    # The view was built before; the queue looked at just before the repair shows a job.
    events = [*link("100", 0, "200"), *sigterm("100", 0, states.VERDICT_INTERRUPTED)]
    view = build_view(META, events, None, {}, {"100": SlurmEnd(states.TIMEOUT, "", "")})
    assert needs_repair(view, {}, retries_left=True)
    assert not needs_repair(view, {"300": row("300", state)}, retries_left=True)


@pytest.mark.parametrize(
    ("retries_left", "repair"), [(True, True), (False, False)], ids=["retries left", "none left"]
)
def test_a_failed_link_is_repaired_only_with_retries_left(retries_left: bool, repair: bool) -> None:
    events = [*link("100", 0, "200"), *verdict("100", 0, states.VERDICT_FAILED, 3)]
    view = build_view(replace(META, max_restarts=5), events, None, {}, {})
    assert view.state == states.CHAIN_STALLED
    assert needs_repair(view, {}, retries_left=retries_left) is repair


@pytest.mark.parametrize(
    ("state", "verdict", "preempted", "kind"),
    [
        (states.FAILED, None, True, states.KIND_PREEMPTED),  # only PreemptTime tells
        (states.FAILED, states.VERDICT_CONTINUE, True, states.KIND_PREEMPTED),
        (states.FAILED, None, False, states.KIND_FAILED),
        (states.COMPLETED, states.VERDICT_CONTINUE, False, states.KIND_CONTINUED),
        (states.COMPLETED, states.VERDICT_COMPLETED, False, states.KIND_COMPLETED),
        (states.TIMEOUT, None, False, states.KIND_TIME_LIMIT),
        (states.NODE_FAIL, None, False, states.KIND_NODE_FAILURE),
        (states.CANCELLED, None, False, states.KIND_CANCELLED),
        ("CANCELLED by 0", None, False, states.KIND_CANCELLED),
        (states.RUNNING, None, True, states.KIND_RUNNING),
    ],
)
def test_how_a_link_ended(state: str, verdict: str | None, preempted: bool, kind: str) -> None:
    assert states.link_kind(state, verdict, preempted) == kind


@pytest.mark.parametrize(
    ("verdict", "exit_code", "preempted", "state"),
    [
        (states.VERDICT_CONTINUE, 143, True, states.FAILED),  # the script's code stays
        (states.VERDICT_CONTINUE, 0, True, states.COMPLETED),
        (states.VERDICT_CONTINUE, 75, False, states.COMPLETED),  # the link exits 0
        (states.VERDICT_FAILED, 3, False, states.FAILED),
        (states.VERDICT_COMPLETED, 0, False, states.COMPLETED),
        (states.VERDICT_TERMINATED, None, False, states.UNKNOWN),
    ],
)
def test_the_state_a_link_ends_in_after_its_verdict(
    verdict: str, exit_code: int | None, preempted: bool, state: str
) -> None:
    assert states.state_after_verdict(verdict, exit_code, preempted) == state


def test_a_stalled_chain_says_what_its_last_link_said() -> None:
    words = "no successor is queued: sbatch: error: Access/permission denied"
    events = [
        *link("100", 0), *verdict("100", 0, states.VERDICT_CONTINUE, 75),
        event(protocol.CHAIN_STALLED, "100", 0, 1060, reason=words),
    ]  # fmt: skip
    view = build_view(replace(META, max_restarts=5), events, None, {},
                      {"100": SlurmEnd(states.COMPLETED)})  # fmt: skip
    assert view.state == states.CHAIN_STALLED
    assert view.reason.endswith(f"; {words}")
