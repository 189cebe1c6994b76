"""The watcher's one check for chains and arrays: an array element whose end is recorded is not
asked of squeue, so its links' states are stale; --max-restarts is not enforced on it again at
every look (a scancel and a cancelled_beyond_max event each time). Found by a review."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from longrun import protocol, slurm, watcher
from longrun.chain_record import ArrayRecord, ChainRecord
from longrun.chain_store import ChainFolder, StateDir


def link_wrote(
    folder: ChainFolder, job: str, restart: int, element: str, then: dict[str, str]
) -> None:
    """Link `job` of array element `element` started, then wrote the event `then`."""
    link = folder.link_dir(job)
    link.mkdir()
    first = {"t": 1.0, "epoch": 1, "event": "link_started", "job": job, "element": element}
    lines = [{**first, "restart_count": restart}, {"t": 2.0, "epoch": 2, "job": job, **then}]
    (link / "events.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_an_ended_element_is_not_cancelled_again_at_every_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = StateDir(tmp_path / "state")
    state.chains.mkdir(parents=True, mode=0o700)
    state.root.chmod(0o700)
    folder = ChainFolder(state.chains / "20261126-120000-beef")
    (folder.path / "links").mkdir(parents=True, mode=0o700)
    folder.path.chmod(0o700)
    array = ArrayRecord(spec="0-1", indices=(0, 1))
    folder.write_meta(
        ChainRecord(chain_id=folder.chain_id, job_name="s", max_restarts=1, array=array)
    )
    folder.append_event("submitted", job="5000", restart_count=0)
    # element 0: a link beyond --max-restarts (restart 2 of limit 1), killed; its end recorded
    link_wrote(folder, "10000", 2, "0", {"event": "sigterm"})
    folder.set_ended("CANCELLED", 0)
    # element 1: running, successor queued
    link_wrote(folder, "10001", 0, "1", {"event": "successor_queued", "successor": "20001"})
    rows = "10001|RUNNING|None|0:10|UNLIMITED|2026-11-26T12:00:00|NONE|N/A|5000|1|\n"
    rows += "20001|PENDING|Dependency|0:00|UNLIMITED|N/A|N/A|N/A|20001|N/A|\n"
    calls: list[list[str]] = []

    def run(args: Sequence[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append(list(args))
        if args[0] == "squeue":
            return subprocess.CompletedProcess(list(args), 0, rows, "")
        if args[0] == "scancel":  # 10000 has long ended
            return subprocess.CompletedProcess(list(args), 1, "", "Invalid job id specified")
        raise AssertionError(args)

    monkeypatch.setattr(slurm, "run", run)
    memory = watcher.WatchMemory()
    out = watcher.Output(io.StringIO())
    for _ in range(3):
        watcher._check(folder, state, out, memory)
    cancels = [c for c in calls if c[0] == "scancel"]
    beyond = [e for e in folder.read_events() if e.kind == protocol.CANCELLED_BEYOND_MAX]
    assert len(cancels) <= 1 and len(beyond) <= 1, (cancels, len(beyond))
