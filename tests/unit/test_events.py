"""Events as the reader returns them: typed accessors over the fields that protocol.py declares,
and every field the Python side reads by name is one that some writer declares."""

from __future__ import annotations

import re
from pathlib import Path

from longrun import protocol
from longrun.chain_store import ChainFolder
from longrun.protocol import Event, as_event, as_events

PACKAGE = Path(protocol.__file__).parent


def test_the_accessors_read_text_and_numbers_as_the_writers_write_them() -> None:
    event = Event(
        {"event": "link_started", "job": "101", "retries": "2", "previous": "", "free": None}
    )
    assert (event.kind, event.job, event.text("previous"), event.text("free")) == (
        "link_started", "101", "", "",
    )  # fmt: skip
    assert event.number("retries") == 2 and event.number("previous") is None
    assert Event({"restart_count": 3}).number("restart_count") == 3
    assert Event({"flag": True}).number("flag") is None
    assert Event({"n": "9" * 30}).number("n") is None  # not a count longrun wrote
    assert Event().kind == "" and Event().job == ""


def test_records_already_read_stay_the_same_objects() -> None:
    event = Event({"event": "claimed"})
    assert as_event(event) is event and as_events([event])[0] is event
    plain = as_event({"event": "claimed"})
    assert isinstance(plain, Event) and plain.kind == "claimed"


def test_the_reader_returns_event_records(tmp_path: Path) -> None:
    folder = ChainFolder(tmp_path / "chain")
    (folder.path / "links").mkdir(parents=True)
    folder.append_event(protocol.SUBMITTED, job="100", restart_count=0)
    (event,) = folder.read_events()
    assert isinstance(event, Event) and event.kind == protocol.SUBMITTED and event.job == "100"


def test_every_field_read_by_name_is_declared() -> None:
    """A field read with .text("x") or .number("x") that no writer declares is a typo: it would
    read "" for ever."""
    declared = protocol.declared_fields()
    read = set()
    for path in PACKAGE.glob("*.py"):
        read |= set(re.findall(r'\.(?:text|number)\("([a-z_]+)"\)', path.read_text()))
    assert read and read <= declared, sorted(read - declared)
