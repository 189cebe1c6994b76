"""What `longrun list` and `longrun status` keep of an ended chain (its row, its view) and read
back: the same as from the event logs, replaced when an event, a link or a writer appears,
never while a folder has just changed, never for a live chain."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from longrun import protocol
from longrun.chain_actions import status_view
from longrun.chain_reading import list_views
from longrun.chain_store import ChainFolder, StateDir
from longrun.listing import list_rows_of
from longrun.report import list_rows, status_text
from longrun.view_cache import RACY_NS
from slurmguard import stand_ins
from statetest import state_with


def age(folder: Path, seconds: float = 60) -> None:
    """The chain's folders as if nothing had been added to them for a while."""
    then = time.time() - seconds
    for path in (folder, *(p for p in folder.rglob("*") if p.is_dir())):
        os.utime(path, (then, then))


def append_event(path: Path, **event: object) -> None:
    path.parent.mkdir(exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(event) + "\n")


def test_rows_of_ended_chains_are_kept_and_read_back(tmp_path: Path) -> None:
    state = StateDir(state_with(tmp_path, "three_links", "timeout", "failed"))
    for folder in state.list():
        age(folder.path)
    expected = list_rows(list_views(state))
    assert list_rows_of(state) == expected
    assert all((folder.path / protocol.SUMMARY).exists() for folder in state.list())
    # Read back: the kept row is used (a changed kept row shows), and the rows are the same.
    first = state.list()[0].path / protocol.SUMMARY
    kept = json.loads(first.read_text())
    assert kept["data"] == next(r for r in expected if r["chain_id"] == first.parent.name)
    kept["data"]["job_name"] = "from the kept row"
    first.write_text(json.dumps(kept))
    rows = list_rows_of(state)
    assert [r["chain_id"] for r in rows] == [r["chain_id"] for r in expected]
    assert [r["job_name"] for r in rows if r["chain_id"] == first.parent.name] == [
        "from the kept row"
    ]


def test_nothing_is_kept_while_a_folder_has_just_changed(tmp_path: Path) -> None:
    state = StateDir(state_with(tmp_path, "timeout"))
    (folder,) = state.list()
    append_event(folder.path / protocol.EVENTS_DIR / "login.1.jsonl", event="watch_ended")
    age(folder.path, RACY_NS / 1e9 / 2)
    assert list_rows_of(state) == list_rows(list_views(state))
    status_view(folder)
    assert not (folder.path / protocol.SUMMARY).exists()
    assert not (folder.path / protocol.KEPT_VIEW).exists()


def kept_chain(tmp_path: Path, name: str) -> tuple[StateDir, ChainFolder]:
    """A state folder with one recorded chain, after a `list` that kept its row; the row
    says FAILED so that a test sees when it is read back."""
    state = StateDir(state_with(tmp_path, name))
    (folder,) = state.list()
    age(folder.path)
    list_rows_of(state)
    summary = folder.path / protocol.SUMMARY
    summary.write_text(summary.read_text().replace('"COMPLETED"', '"FAILED"'))
    assert list_rows_of(state)[0]["state"] == "FAILED"  # the kept row is what list reads
    return state, folder


def test_a_kept_row_is_dropped_when_a_link_appears(tmp_path: Path) -> None:
    state, folder = kept_chain(tmp_path, "timeout")
    folder.link_dir("999999").mkdir(parents=True)
    assert list_rows_of(state)[0]["state"] == "COMPLETED"  # a new link: read the logs again


def test_a_kept_row_is_dropped_when_an_event_is_added(tmp_path: Path) -> None:
    state, folder = kept_chain(tmp_path, "timeout")
    later = int(time.time())
    append_event(folder.path / protocol.EVENTS, event="watch_ended", epoch=later, t=later)
    row = list_rows_of(state)[0]
    assert (row["state"], row["last_change_epoch"]) == ("COMPLETED", later)


def test_a_kept_row_is_dropped_when_a_writer_appears(tmp_path: Path) -> None:
    state, folder = kept_chain(tmp_path, "timeout")
    events_dir = folder.path / protocol.EVENTS_DIR
    later = int(time.time())
    append_event(events_dir / "login.1.jsonl", event="watch_ended", epoch=later, t=later)
    assert list_rows_of(state)[0]["last_change_epoch"] == later
    # The writer's file existed (folder times are old again): its next event is seen too.
    age(folder.path)
    list_rows_of(state)
    append_event(events_dir / "login.1.jsonl", event="watch_ended", epoch=later + 5, t=later + 5)
    assert list_rows_of(state)[0]["last_change_epoch"] == later + 5


def test_a_row_kept_by_an_earlier_version_is_replaced(tmp_path: Path) -> None:
    state = StateDir(state_with(tmp_path, "failed"))
    (folder,) = state.list()
    summary = folder.path / protocol.SUMMARY
    summary.write_text(json.dumps({"data": {"chain_id": "old", "state": "X"}, "links_entries": 1}))
    age(folder.path)
    assert list_rows_of(state) == list_rows(list_views(state))
    assert "stamp" in json.loads(summary.read_text())


def test_live_only_never_reads_kept_rows(tmp_path: Path) -> None:
    state, _ = kept_chain(tmp_path, "failed")
    assert list_rows_of(state, live_only=True) == []


def test_a_chain_without_a_recorded_end_is_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    squeue = stand_ins(tmp_path / "bin", squeue="exit 0")  # Slurm knows none of its jobs
    monkeypatch.setenv("PATH", f"{squeue}:{os.environ['PATH']}")
    state = StateDir(state_with(tmp_path, "timeout"))
    (folder,) = state.list()
    (folder.path / protocol.ENDED).unlink()
    age(folder.path)
    list_rows_of(state)
    assert not (folder.path / protocol.SUMMARY).exists()


def test_status_of_an_ended_chain_reads_its_kept_view(tmp_path: Path) -> None:
    (folder,) = StateDir(state_with(tmp_path, "three_links")).list()
    age(folder.path)
    fresh = status_view(folder)
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
