"""What `longrun list` and `longrun status` keep of a chain that ended long ago (its row, its
view) and read back: the same as from the event logs, written once, never for a chain that
ended recently, and dropped when a link appears."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from longrun import protocol
from longrun.chain_ops import list_views, status_view
from longrun.chain_store import ChainFolder, StateDir
from longrun.kept import SETTLED_SECONDS
from longrun.listing import list_rows_of
from longrun.report import list_rows, status_text
from statetest import state_with


def age(folder: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(folder / protocol.ENDED, (then, then))


def test_rows_of_chains_that_ended_long_ago_are_kept_and_read_back(tmp_path: Path) -> None:
    root = state_with(tmp_path, "three_links", "timeout", "failed")
    state = StateDir(root)
    old, recent, _ = (folder.path for folder in state.list())
    age(old, SETTLED_SECONDS + 60)
    age(recent, 10)
    age(_, SETTLED_SECONDS + 60)
    expected = list_rows(list_views(state))
    assert list_rows_of(state) == expected
    assert (old / protocol.SUMMARY).exists() and not (recent / protocol.SUMMARY).exists()
    # Read back: the kept row is used (a changed kept row shows), and the rows are the same.
    kept = json.loads((old / protocol.SUMMARY).read_text())
    assert kept["data"] == next(r for r in expected if r["chain_id"] == old.name)
    kept["data"]["job_name"] = "from the kept row"
    (old / protocol.SUMMARY).write_text(json.dumps(kept))
    rows = list_rows_of(state)
    assert [r["chain_id"] for r in rows] == [r["chain_id"] for r in expected]
    assert [r["job_name"] for r in rows if r["chain_id"] == old.name] == ["from the kept row"]


def settled(tmp_path: Path, name: str) -> tuple[StateDir, ChainFolder]:
    """A state folder with one recorded chain that ended long ago, after its first `list`."""
    state = StateDir(state_with(tmp_path, name))
    (folder,) = state.list()
    age(folder.path, SETTLED_SECONDS + 60)
    list_rows_of(state)
    return state, folder


def test_a_kept_row_is_dropped_when_a_link_appears(tmp_path: Path) -> None:
    state, folder = settled(tmp_path, "timeout")
    summary = folder.path / protocol.SUMMARY
    summary.write_text(summary.read_text().replace('"COMPLETED"', '"FAILED"'))
    assert list_rows_of(state)[0]["state"] == "FAILED"  # the kept row is what list reads
    ChainFolder(folder.path).link_dir("999999").mkdir(parents=True)
    assert list_rows_of(state)[0]["state"] == "COMPLETED"  # a new link: read the logs again


def test_live_only_never_reads_kept_rows(tmp_path: Path) -> None:
    state, folder = settled(tmp_path, "failed")
    assert (folder.path / protocol.SUMMARY).exists()
    assert list_rows_of(state, live_only=True) == []


def test_status_of_a_chain_that_ended_long_ago_reads_its_kept_view(tmp_path: Path) -> None:
    root = state_with(tmp_path, "three_links")
    (folder,) = StateDir(root).list()
    age(folder.path, 10)
    fresh = status_view(folder)
    assert not (folder.path / protocol.KEPT_VIEW).exists()  # ended just now: not kept
    age(folder.path, SETTLED_SECONDS + 60)
    assert status_view(folder) == fresh
    kept = folder.path / protocol.KEPT_VIEW
    data = json.loads(kept.read_text())
    data["data"]["reason"] = "from the kept view"
    kept.write_text(json.dumps(data))
    assert status_view(folder).reason == "from the kept view"
    assert status_text(status_view(folder)).replace("from the kept view", fresh.reason) == (
        status_text(fresh)
    )
    folder.link_dir("999999").mkdir(parents=True)  # a link appeared: the logs are read again
    assert status_view(folder).reason == fresh.reason
