"""What a chain looks like, built from real event logs (data/chains, left by end-to-end runs).

Each fixture chain holds chain.json, events.jsonl and ended as the chain wrote them, and
sacct.txt: what Slurm's accounting recorded for its jobs afterwards.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from longrun import states
from longrun.chain_actions import needs_repair
from longrun.chain_record import ChainRecord
from longrun.chain_view import ChainView, build_view
from longrun.report import event_line, progress_line, status_text
from longrun.slurm_output import QueueRow, parse_sacct, slurm_epoch
from longrun.watcher import Output

CHAINS = Path(__file__).parent / "data" / "chains"


def load(name: str) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    folder = CHAINS / name
    meta = ChainRecord.from_json((folder / "chain.json").read_text())
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    return meta, events, (folder / "ended").read_text().strip()


def view_of(name: str) -> ChainView:
    return build_view(*load(name))


@pytest.mark.parametrize(
    ("name", "state", "links"),
    [
        ("timeout", "COMPLETED", 2),
        ("failed", "FAILED", 1),
        ("cancelled", "CANCELLED", 1),
        ("repaired", "COMPLETED", 2),
        ("three_links", "COMPLETED", 3),
        ("handover", "COMPLETED", 4),
    ],
)
def test_each_link_has_the_state_and_times_slurm_recorded(
    name: str, state: str, links: int
) -> None:
    view = view_of(name)
    assert view.state == state
    assert len(view.links) == links
    accounting = parse_sacct((CHAINS / name / "sacct.txt").read_text())
    for index, link in enumerate(view.links):
        record = accounting[link.job_id]
        assert link.state == record.state, link
        assert link.start_epoch == slurm_epoch(record.start), link
        end = slurm_epoch(record.end)
        assert link.end_epoch is not None and end is not None
        if index < len(view.links) - 1:
            assert link.end_epoch == end, link
        else:
            assert abs(link.end_epoch - end) <= 2, link


def test_a_link_killed_by_its_time_limit_reads_as_such() -> None:
    first, second = view_of("timeout").links
    assert (first.state, first.why, first.exit_code) == ("TIMEOUT", "reached its time limit", 143)
    assert (second.state, second.why) == ("COMPLETED", "the script finished (exit 0)")
    assert (first.number, second.number) == (1, 2)
    shown = view_of("timeout").to_json()["links"]  # `longrun status --json` says "link"
    assert [link["link"] for link in shown] == [1, 2] and "number" not in shown[0]


def test_successor_and_current_job() -> None:
    view = view_of("three_links")
    assert view.current_job == view.links[-1].job_id
    assert view.successor_job not in {link.job_id for link in view.links}
    assert not view.is_live


def test_watcher_lines_for_a_chain_that_went_on_after_a_timeout() -> None:
    meta, events, _ = load("timeout")
    first, second = (link.job_id for link in view_of("timeout").links)
    lines = [line for e in events if (line := event_line(e, meta.max_restarts, False))]
    assert lines == [
        f"Job submitted with ID {first} (link 1/1000)",
        f"Watching job {first} (link 1/1000)",
        f"Job {first} (link 1/1000): pre-timeout signal USR1",
        f"Job {first} (link 1/1000): stopped from outside (time limit, preemption or scancel)",
        f"Watching job {second} (link 2/1000)",
        f"Job {first} (link 1/1000) ended TIMEOUT: reached its time limit; "
        f"job {second} (link 2/1000) takes over",
        f"Job {second} (link 2/1000): the script finished (exit 0)",
        "Chain ended COMPLETED: the script finished (exit 0)",
    ]


def test_watcher_lines_for_a_cancelled_chain_say_why_it_ends() -> None:
    meta, events, _ = load("cancelled")
    lines = [line for e in events if (line := event_line(e, meta.max_restarts, False))]
    assert lines[-1].startswith("Chain ended CANCELLED")


def test_status_text() -> None:
    view = view_of("timeout")
    text = status_text(view)
    first = view.links[0]
    assert text.splitlines()[0] == (
        f"Chain {view.chain_id} (job.sh): COMPLETED - the script finished (exit 0)"
    )
    assert "LINK  JOB  STATE      WHY" in text
    assert f"1     {first.job_id}  TIMEOUT    reached its time limit" in text
    assert "Total run time: 00:01:21 over 2 links (at most 1000)" in text


def queue_row(
    job: str, state: str, reason: str = "None", start: str = "N/A", preempt_time: str = "N/A"
) -> QueueRow:
    return QueueRow(job, state, reason, "0:00", "UNLIMITED", start, "N/A", preempt_time)


def test_live_views_as_squeue_shows_the_chain() -> None:
    meta, events, _ = load("three_links")
    first = events[1]["job"]
    # Submitted, not started: the first job waits.
    view = build_view(meta, events[:2], None, {first: queue_row(first, "PENDING")})
    assert (view.state, view.reason) == ("PENDING", f"job {first} is waiting in the queue")
    assert view.current_job == first
    # Link 0 runs, its successor waits for it.
    started = events[: next(i for i, e in enumerate(events) if e["event"] == "body_started") + 1]
    successor = next(str(e["successor"]) for e in started if e["event"] == "successor_queued")
    queue = {
        first: queue_row(first, "RUNNING", start="2026-11-25T21:29:52"),
        successor: queue_row(successor, "PENDING", "Dependency"),
    }
    view = build_view(meta, started, None, queue)
    assert (view.state, view.current_job, view.successor_job) == ("RUNNING", first, successor)
    assert view.reason == "link 1/1000 is running"
    assert view.links[0].start_epoch == slurm_epoch("2026-11-25T21:29:52")
    assert view.links[0].end_epoch is None


def test_a_chain_with_nothing_queued_and_an_unknown_end_is_stalled_then_settled() -> None:
    meta, events, _ = load("timeout")
    # The log up to link 0's SIGTERM: the successor never started.
    cut = next(i for i, e in enumerate(events) if e["event"] == "body_exited") + 1
    view = build_view(meta, events[:cut], None, {})
    assert view.state == states.CHAIN_STALLED
    assert "not known yet" in view.reason
    first = view.links[0].job_id
    settled = build_view(meta, events[:cut], None, {first: queue_row(first, "TIMEOUT")})
    assert settled.state == states.CHAIN_STALLED and settled.links[0].state == "TIMEOUT"
    assert "no successor is queued" in settled.reason
    assert needs_repair(settled, {}, retries_left=False)
    # Not when the successor is still queued, nor when no restarts are left.
    pending = {"999": queue_row("999", "PENDING")}
    assert not needs_repair(settled, pending, retries_left=False)
    timed_out = {first: queue_row(first, "TIMEOUT")}
    limited = build_view(replace(meta, max_restarts=0), events[:cut], None, timed_out)
    assert limited.state == states.CHAIN_MAX_RESTARTS
    assert not needs_repair(limited, {}, retries_left=False)


def test_a_failed_chain_is_not_repaired_unless_retries_remain() -> None:
    meta, events, _ = load("failed")
    cut = next(i for i, e in enumerate(events) if e["event"] == "verdict") + 1
    view = build_view(meta, events[:cut], None, {})
    assert view.links[0].verdict == "failed"
    assert not needs_repair(view, {}, retries_left=False)
    assert needs_repair(view, {}, retries_left=True)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_rewritten_in_place_on_a_terminal_only() -> None:
    view = view_of("timeout")
    line = progress_line(view)
    last = view.links[-1]
    assert line == (
        f"[link 2/1000] job {last.job_id} COMPLETED 00:00:01 | chain COMPLETED, run time 00:01:21"
    )
    terminal = Terminal()
    out = Output(terminal)
    out.progress(line)
    out.line("an event")
    # The progress line, then erased before the event line is written.
    assert re.fullmatch(
        re.escape(f"\r\033[K{line}\r\033[K") + r"\[\d\d:\d\d:\d\d\] an event\n",
        terminal.getvalue(),
    )
    plain = io.StringIO()
    out = Output(plain)
    out.progress(line)
    assert plain.getvalue() == ""


def test_repair_follows_the_rule_table() -> None:
    meta, events, _ = load("timeout")
    cut = next(i for i, e in enumerate(events) if e["event"] == "body_exited") + 1
    first = build_view(meta, events[:cut], None, {}).links[0].job_id
    # No verdict, FAILED, and slurmctld shows a PreemptTime: preempted in its GraceTime.
    without_verdict = [e for e in events[:cut] if e["event"] != "sigterm"]
    preempted = {first: queue_row(first, "FAILED", preempt_time="2026-11-25T21:30:00")}
    view = build_view(meta, without_verdict, None, preempted)
    assert needs_repair(view, {}, retries_left=False)
    failed = {first: queue_row(first, "FAILED")}
    view = build_view(meta, without_verdict, None, failed)
    assert not needs_repair(view, {}, retries_left=False)
    # DEADLINE ends the chain: nothing to repair.
    view = build_view(meta, without_verdict, None, {first: queue_row(first, "DEADLINE")})
    assert not needs_repair(view, {}, retries_left=False)


def test_a_successor_cancelled_by_the_user_stops_the_chain_after_its_link() -> None:
    meta, events, _ = load("timeout")
    cut = next(i for i, e in enumerate(events) if e["event"] == "body_exited") + 1
    view = build_view(meta, events[:cut], None, {})
    first, successor = view.links[0].job_id, view.successor_job
    assert successor
    queue = {first: queue_row(first, "TIMEOUT"), successor: queue_row(successor, "CANCELLED")}
    view = build_view(meta, events[:cut], None, queue)
    assert view.state == states.CHAIN_CANCELLED
    assert "stopped after link 1" in view.reason
    assert not needs_repair(view, {}, retries_left=False)
    # Removed at its --deadline before it could start: the chain ends DEADLINE.
    queue[successor] = queue_row(successor, "DEADLINE")
    assert build_view(meta, events[:cut], None, queue).state == states.CHAIN_DEADLINE


def test_a_job_that_lost_the_claim_is_no_link() -> None:
    meta, events, _ = load("three_links")
    second = view_of("three_links").links[1]
    duplicate = [
        {"event": "link_started", "job": "999", "restart_count": second.restart_count, "epoch": 1},
        {"event": "claim_lost", "job": "999", "restart_count": second.restart_count, "owner": "x"},
    ]
    view = build_view(meta, [*events, *duplicate], "COMPLETED")
    assert [link.job_id for link in view.links] == [
        link.job_id for link in view_of("three_links").links
    ]


def test_a_link_interrupted_by_its_time_limit_says_so() -> None:
    meta, events, ended = load("timeout")
    first = view_of("timeout").links[0].job_id
    # As links now record it: the SIGTERM showed Reason=TimeLimit, the verdict "interrupted".
    for event in events:
        if event["event"] == "sigterm" and event["job"] == first:
            event.update(verdict="interrupted", cause="TimeLimit")
    marked = [*events]
    at = next(i for i, e in enumerate(marked) if e["event"] == "sigterm")
    marked.insert(at + 1, {**marked[at], "event": "verdict", "verdict": "interrupted",
                           "reason": "SIGTERM from outside"})  # fmt: skip
    link = build_view(meta, marked, ended).links[0]
    assert (link.state, link.why) == ("TIMEOUT", "reached its time limit")


def test_a_link_that_found_its_successor_removed_at_the_deadline_ends_the_chain_deadline() -> None:
    meta, events, _ = load("timeout")
    cut = next(i for i, e in enumerate(events) if e["event"] == "body_exited") + 1
    first = build_view(meta, events[:cut], None, {}).links[0]
    successor = build_view(meta, events[:cut], None, {}).successor_job
    stopped = {
        "event": "successor_stopped", "job": first.job_id, "successor": successor,
        "state": states.DEADLINE,
    }  # fmt: skip
    view = build_view(
        meta, [*events[:cut], stopped], None, {first.job_id: queue_row(first.job_id, "TIMEOUT")}
    )
    assert view.state == states.CHAIN_DEADLINE
    assert not needs_repair(view, {}, retries_left=False)


def test_what_the_chain_learned_is_shown_per_link() -> None:
    """A node failure on vm-b; the successor started there once it was back and handed over
    to one that excluded it (tests/e2e/test_learning_chain.py, 2026-11-30)."""
    view = view_of("handover")
    failed, handed, ran, _ = view.links
    assert (failed.nodes, failed.avoided, failed.handed_over) == ("vm-b", True, None)
    assert (handed.nodes, handed.avoided) == ("vm-b", True)
    assert handed.handed_over == "node vm-b is avoided by this chain"
    assert handed.why == "handed over: node vm-b is avoided by this chain"
    assert (ran.nodes, ran.avoided, ran.handed_over) == ("vm", False, None)
    assert (view.free_links, view.avoided_nodes) == (1, ["vm-b"])
    assert view.label(ran) == "link 3/1001"  # the hand-over is free
    data = view.to_json()
    assert data["free_links"] == 1 and data["links"][1]["handed_over"] == handed.handed_over
    text = status_text(view)
    assert "vm-b (avoided)" in text and "Nodes the chain avoids: vm-b" in text
    assert f"Link 2 (job {handed.job_id}) handed over without running the script" in text


def test_a_hand_over_whose_event_is_missing_is_still_free() -> None:
    """A link killed right after it queued its successor wrote no `handed_over`: the next
    link's own --free-links still tells the watcher (enforce_max_restarts) of the free link."""
    meta, events, ended = load("handover")
    events = [e for e in events if e["event"] != "handed_over"]
    view = build_view(meta, events, ended)
    assert view.free_links == 1 and view.restart_limit == view.max_restarts + 1


def test_the_watcher_says_what_the_chain_learned() -> None:
    _, events, _ = load("handover")
    lines = [event_line(e, 999, verbose=False) for e in events]
    assert "Job 4774: later links avoid node(s) vm-b (NODE_FAIL)" in lines
    assert (
        "Job 4774 (link 2/1000): node vm-b is avoided by this chain: the script does not run "
        "there (a free link)"
    ) in lines
