"""The protocol module declares what both sides write; these tests hold both sides to it."""

from __future__ import annotations

import ast
import json
import re
import shlex
from collections import defaultdict
from pathlib import Path

from longrun import protocol, states
from longrun.render import render_library

PACKAGE = Path(protocol.__file__).parent


def job_side_events() -> dict[str, set[str]]:
    """Every `lr_event NAME KEY VALUE...` of the library: the event names and their keys."""
    text = render_library().replace("\\\n", " ")
    found: dict[str, set[str]] = defaultdict(set)
    for line in text.splitlines():
        for match in re.finditer(r"\blr_event (?=[a-z])(.*)", line):
            lexer = shlex.shlex(match.group(1), posix=True, punctuation_chars=";|&()")
            lexer.whitespace_split = True
            words: list[str] = []
            for token in lexer:
                if token and token[0] in ";|&()":
                    break
                words.append(token)
            name, pairs = words[0], words[1:]
            assert len(pairs) % 2 == 0, f"lr_event {name}: a key without a value: {line}"
            found[name].update(pairs[0::2])
    return dict(found)


def python_side_events() -> dict[str, set[str]]:
    """Every `append_event(protocol.NAME, key=...)` of the package."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "append_event"
            ):
                continue
            first = node.args[0]
            assert isinstance(first, ast.Attribute), f"{path.name}: name events by protocol.X"
            found[getattr(protocol, first.attr)].update(k.arg for k in node.keywords if k.arg)
    return dict(found)


def test_the_job_side_writes_exactly_the_declared_events() -> None:
    written = job_side_events()
    declared = {name: set(fields) for name, fields in protocol.JOB_SIDE_EVENTS.items()}
    assert written == declared


def test_the_python_side_writes_exactly_the_declared_events() -> None:
    written = python_side_events()
    declared = {name: set(fields) for name, fields in protocol.PYTHON_SIDE_EVENTS.items()}
    assert written == declared


def test_the_link_arguments_are_the_ones_the_library_reads() -> None:
    library = render_library()
    for option in protocol.ARGUMENTS.values():
        assert f"{option}=*)" in library
    assert protocol.link_arguments(0) == ["--restart-count=0", "--retries=0"]
    assert protocol.link_arguments(2, "10", "12", 1) == [
        "--restart-count=2", "--initial-job=10", "--previous-job=12", "--retries=1",
    ]  # fmt: skip


def test_the_snapshot_reads_back_what_was_written() -> None:
    environ = {"A": "1", "MULTI": "x\ny", "EQ": "a=b", "BASH_FUNC_f%%": "() { :; }", "E": ""}
    assert protocol.read_snapshot(protocol.snapshot_bytes(environ)) == environ


def test_events_of_chains_made_by_longrun_0_1_are_read_in_todays_words() -> None:
    data = Path(__file__).parent / "data" / "chains" / "repaired" / "events.jsonl"
    for line in data.read_text().splitlines():
        event = json.loads(line)
        old = {
            {"restart_count": "link", "successor": "standby"}.get(k, k): v for k, v in event.items()
        }
        old["event"] = (
            {"verdict": "decision"}.get(event["event"], event["event"])
            .replace("successor_queued", "standby_submitted")
            .replace("successor", "standby")
        )
        assert protocol.upgrade_event(old) == event
        assert protocol.upgrade_event(event) == event


def test_a_user_cancelled_successor_of_an_older_version_reads_as_a_stop_in_cancelled() -> None:
    old = {"event": "successor_cancelled_by_user", "job": "10", "successor": "11"}
    assert protocol.upgrade_event(old) == {
        "event": protocol.SUCCESSOR_STOPPED, "job": "10", "successor": "11",
        "state": states.CANCELLED,
    }  # fmt: skip
