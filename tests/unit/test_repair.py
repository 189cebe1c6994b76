"""The watcher's repair of a stalled chain, decided on stand-in Slurm answers: only after sacct
answered (a successor you cancelled may have left the queue), again only for successors that
never started, and never without a word. The repair on the real cluster is tested in
tests/e2e/test_watch.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from chainfiles import FakeSlurm, Lines, stalled_chain

from longrun import chain_ops, slurm, states, watcher

SUCCESSOR = "143"  # the successor the recorded chain's first link queued


def test_a_successor_you_cancelled_is_not_replaced_when_sacct_does_not_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Past MinJobAge squeue no longer shows the successor you cancelled; slurmdbd is down.
    folder, state, last = stalled_chain(tmp_path)
    fake = FakeSlurm({last: "TIMEOUT"}, sacct_fails=True)
    monkeypatch.setattr(slurm, "run", fake.run)
    memory, out = watcher.WatchMemory(), watcher.Output(stream=Lines())
    for _ in range(3):
        view = watcher._check(folder, state, out, memory)
    assert fake.submitted == [], "one failed sacct call replaced a successor you cancelled"
    assert view.state == states.CHAIN_STALLED
    said = out.stream.getvalue()
    assert said.count("sacct did not answer about job") == 1, said  # once, not every look
    # sacct answers: the successor was cancelled, the chain stopped after its link.
    fake.sacct_fails = False
    fake.accounting = {SUCCESSOR: "CANCELLED"}
    view = watcher._check(folder, state, out, memory)
    assert fake.submitted == [] and view.state == states.CHAIN_CANCELLED
    assert "stopped after link 1" in view.reason


def test_a_successor_lost_without_a_trace_is_repaired_once_sacct_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, state, last = stalled_chain(tmp_path)
    fake = FakeSlurm({last: "TIMEOUT"})  # sacct answers, and knows nothing of 143
    monkeypatch.setattr(slurm, "run", fake.run)
    watcher._check(folder, state, watcher.Output(stream=Lines()), watcher.WatchMemory())
    assert len(fake.submitted) == 1


def test_a_repaired_successor_lost_before_it_started_is_repaired_again_up_to_a_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The repaired successor dies at launch (NODE_FAIL) before its script started: the work
    # of the link still needs a successor. Each one that never starts is replaced, up to 3.
    folder, state, last = stalled_chain(tmp_path)
    fake = FakeSlurm({last: "TIMEOUT"})
    monkeypatch.setattr(slurm, "run", fake.run)
    memory, out = watcher.WatchMemory(), watcher.Output(stream=Lines())
    watcher._check(folder, state, out, memory)
    for attempt in range(5):
        fake.queue[f"{901 + attempt}"] = "NODE_FAIL"
        view = watcher._check(folder, state, out, memory)
    assert len(fake.submitted) == chain_ops.MAX_REPAIRS
    assert view.state == states.CHAIN_STALLED and "3 repairs" in view.reason
    refusals = [e for e in folder.read_events() if e["event"] == "repair_refused"]
    assert len(refusals) == 1, "the refusal is recorded once"
