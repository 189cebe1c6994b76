"""Reading a chain's event files (longrun/chain_store.py): every writer's file merged by time,
a damaged line skipped without moving other lines to another writer, a line still being
written left for the next read."""

from __future__ import annotations

import json
from pathlib import Path

from longrun import protocol
from longrun.chain_store import ChainFolder, EventTail


def write(path: Path, *lines: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write("".join(line + "\n" for line in lines))


def event(name: str, t: float, **fields: object) -> str:
    return json.dumps({"event": name, "t": t, **fields})


def chain(tmp_path: Path) -> ChainFolder:
    folder = tmp_path / "20261126-120000-abcd"
    write(folder / protocol.EVENTS, event("submitted", 1.0))  # the log of an old chain
    write(folder / protocol.EVENTS_DIR / "login.12.jsonl", event("watch_started", 3.0))
    write(folder / protocol.LINKS / "101" / protocol.EVENTS, event("link_started", 2.0))
    write(folder / protocol.LINKS / "102" / protocol.EVENTS, event("link_started", 4.0))
    (folder / protocol.LINKS / "103").mkdir()  # started, nothing written yet
    return ChainFolder(folder)


def names(events: list[dict]) -> list[str]:
    return [f"{e['event']}@{e['t']:g}" for e in events]


def test_every_writers_events_merged_by_time(tmp_path: Path) -> None:
    folder = chain(tmp_path)
    assert names(folder.read_events()) == [
        "submitted@1", "link_started@2", "watch_started@3", "link_started@4",
    ]  # fmt: skip


def test_equal_times_keep_file_then_line_order(tmp_path: Path) -> None:
    folder = chain(tmp_path)
    write(folder.path / protocol.EVENTS_DIR / "login.12.jsonl", event("a", 9.0), event("b", 9.0))
    write(folder.path / protocol.LINKS / "101" / protocol.EVENTS, event("c", 9.0))
    assert names(folder.read_events())[-3:] == ["a@9", "b@9", "c@9"]


def test_a_line_of_two_records_is_skipped_and_moves_no_other_line(tmp_path: Path) -> None:
    folder = chain(tmp_path)
    own = folder.path / protocol.EVENTS_DIR / "login.12.jsonl"
    # Valid inside one JSON array of every line: it must not shift the lines after it to
    # another writer (that would change their order at equal times).
    write(own, '{"event": "x", "t": 9},{"event": "y", "t": 9}', "[1, 2]", event("a", 9.0))
    write(folder.path / protocol.LINKS / "101" / protocol.EVENTS, event("c", 9.0))
    assert names(folder.read_events())[-2:] == ["a@9", "c@9"]
    assert len(folder.read_events()) == 6


def test_a_damaged_line_is_skipped(tmp_path: Path) -> None:
    folder = chain(tmp_path)
    write(folder.path / protocol.LINKS / "101" / protocol.EVENTS, '{"event": "c", "t"', "7")
    write(folder.path / protocol.LINKS / "102" / protocol.EVENTS, event("d", 9.0))
    assert names(folder.read_events()) == [
        "submitted@1", "link_started@2", "watch_started@3", "link_started@4", "d@9",
    ]  # fmt: skip


def test_the_tail_returns_new_whole_lines_only(tmp_path: Path) -> None:
    folder = chain(tmp_path)
    tail = EventTail(folder, from_end=True)
    assert tail.read() == []
    link = folder.path / protocol.LINKS / "103" / protocol.EVENTS
    link.write_text(event("link_started", 5.0) + "\n" + '{"event": "body_sta')
    assert names(tail.read()) == ["link_started@5"]
    with link.open("a") as handle:
        handle.write('rted", "t": 6}\n')
    write(folder.path / protocol.EVENTS_DIR / "login.12.jsonl", event("watch_ended", 7.0))
    assert names(tail.read()) == ["body_started@6", "watch_ended@7"]
    assert tail.read() == []
