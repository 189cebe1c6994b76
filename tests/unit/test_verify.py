"""The invariant checker of `longrun verify`, on chains recorded on the local cluster (with the
sacct output captured at the time) and on the same chains broken on purpose."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from longrun.chain_store import ChainFolder
from longrun.slurm_output import QueueRow, parse_sacct
from longrun.verify import check_links, report_text

CHAINS = Path(__file__).parent / "data" / "chains"


def recorded(name: str) -> tuple[list[dict[str, Any]], str | None, dict]:
    folder = ChainFolder(CHAINS / name)
    accounting = parse_sacct((CHAINS / name / "sacct.txt").read_text())
    return folder.read_events(), folder.ended(), accounting


@pytest.mark.parametrize("name", ["timeout", "failed", "cancelled", "repaired", "three_links"])
def test_recorded_chains_kept_every_promise(name: str) -> None:
    events, ended, accounting = recorded(name)
    report = check_links(name, events, ended, accounting, {})
    assert report.ok, report.problems
    assert report_text(report).endswith(": OK")


def test_overlapping_links_are_found() -> None:
    events, ended, accounting = recorded("three_links")
    first, second = [e["job"] for e in events if e["event"] == "link_started"][:2]
    late = accounting[first]
    accounting[first] = type(late)(**{**late.__dict__, "end": accounting[second].end})
    report = check_links("c", events, ended, accounting, {})
    assert f"jobs {first} and {second} overlapped in time" in report.problems


def test_a_second_successor_that_ran_the_script_is_found() -> None:
    events, ended, accounting = recorded("three_links")
    first = next(e["job"] for e in events if e["event"] == "link_started")
    extra = [
        {"event": "link_started", "job": "999", "previous": first, "restart_count": 1},
        {"event": "claim_lost", "job": "999", "previous": first, "owner": "x"},
        {"event": "body_started", "job": "999"},
    ]
    report = check_links("c", events + extra, ended, accounting, {})
    assert report.problems == ["jobs that lost the claim ran the script: ['999']"]


def test_a_missing_judgement_two_ends_and_a_queued_job_are_found() -> None:
    events, ended, accounting = recorded("three_links")
    judged = next(e for e in events if e["event"] == "judged")
    events = [e for e in events if e is not judged]
    events.append({"event": "chain_ended", "state": "COMPLETED", "by": "watcher"})
    queue = {"777": QueueRow("777", "PENDING", "Dependency", "0:00", "1:00", "N/A", "N/A")}
    report = check_links("c", events, ended, accounting, queue)
    assert f"job {judged['job']} did not judge its predecessor {judged['previous']}" in (
        report.problems
    )
    assert "2 ends were recorded, not one" in report.problems
    assert "ended COMPLETED, but jobs are still queued: ['777']" in report.problems
    assert json.dumps(report.problems)
