"""The watcher's repair of a stalled chain, decided on stand-in Slurm answers: only after sacct
answered (a successor you cancelled may have left the queue), again only for successors that
never started, and never without a word. The repair on the real cluster is tested in
tests/e2e/test_watch.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from chainfiles import watched_stall

from longrun import chain_actions, states

SUCCESSOR = "143"  # the successor the recorded chain's first link queued


def test_a_successor_you_cancelled_is_not_replaced_when_sacct_does_not_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Past MinJobAge squeue no longer shows the successor you cancelled; slurmdbd is down.
    watched = watched_stall(tmp_path, monkeypatch, sacct_fails=True)
    for _ in range(3):
        view = watched.check()
    assert watched.slurm.submitted == [], "one failed sacct call replaced a cancelled successor"
    assert view.state == states.CHAIN_STALLED
    assert watched.said().count("sacct did not answer about job") == 1  # once, not every look
    # sacct answers: the successor was cancelled, the chain stopped after its link.
    watched.slurm.sacct_fails = False
    watched.slurm.accounting = {SUCCESSOR: "CANCELLED"}
    view = watched.check()
    assert watched.slurm.submitted == [] and view.state == states.CHAIN_CANCELLED
    assert "stopped after link 1" in view.reason


def test_a_successor_lost_without_a_trace_is_repaired_once_sacct_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watched = watched_stall(tmp_path, monkeypatch)  # sacct answers, and knows nothing of 143
    watched.check()
    assert len(watched.slurm.submitted) == 1


def test_a_repaired_successor_lost_before_it_started_is_repaired_again_up_to_a_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The repaired successor dies at launch (NODE_FAIL) before its script started: the work
    # of the link still needs a successor. Each one that never starts is replaced, up to 3.
    watched = watched_stall(tmp_path, monkeypatch)
    watched.check()
    for attempt in range(5):
        watched.slurm.queue[f"{901 + attempt}"] = "NODE_FAIL"
        view = watched.check()
    assert len(watched.slurm.submitted) == chain_actions.MAX_REPAIRS
    assert view.state == states.CHAIN_STALLED and "3 repairs" in view.reason
    refusals = [e for e in watched.folder.read_events() if e["event"] == "repair_refused"]
    assert len(refusals) == 1, "the refusal is recorded once"


def test_a_successor_a_repair_queued_and_you_cancelled_stops_the_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same watcher: it repaired (901), then you cancelled 901 before it started, and it
    # left the queue. sacct is asked about 901 too: the chain stops, nothing replaces it.
    watched = watched_stall(tmp_path, monkeypatch)
    watched.check()
    assert len(watched.slurm.submitted) == 1
    watched.slurm.accounting = {"901": "CANCELLED"}
    view = watched.check()
    assert len(watched.slurm.submitted) == 1, "a successor you cancelled was replaced"
    assert view.state == states.CHAIN_CANCELLED
