"""`longrun logs` (each link's part of its output files) and `longrun status --timeline`, on
recorded chains and on made-up ones; the commands end to end on the cluster: tests/e2e."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from test_array_view import recorded
from test_chain_view import view_of

from longrun import protocol, states
from longrun.chain_record import ChainRecord
from longrun.chain_view import build_view
from longrun.cli import main
from longrun.logs import follow, print_logs, segments
from longrun.timeline import GLYPHS, timeline_text
from statetest import state_with

T0 = 1795700000


def chain_events(outputs: list[tuple[str, int]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A chain whose links (jobs 101, 102, ...) wrote output to these files, from these sizes."""
    meta = ChainRecord(chain_id="20261126-120000-abcd", job_name="job.sh", max_restarts=9)
    events: list[dict[str, Any]] = [{"event": protocol.SUBMITTED, "job": "101", "t": T0}]
    for index, (path, offset) in enumerate(outputs):
        job = str(101 + index)
        base = T0 + 100 * index
        last = index == len(outputs) - 1
        events += [
            {"event": protocol.LINK_STARTED, "job": job, "t": base + 1, "epoch": base + 1,
             "restart_count": index, "previous": str(100 + index) if index else "",
             "output": path, "output_offset": str(offset), "error": path,
             "error_offset": str(offset)},
            {"event": protocol.VERDICT_RECORDED, "job": job, "t": base + 50, "epoch": base + 50,
             "restart_count": index, "verdict": "completed" if last else "continue",
             "reason": "benchmark"},
        ]  # fmt: skip
        if not last:
            events.append({"event": protocol.SUCCESSOR_QUEUED, "job": job, "t": base + 2,
                           "restart_count": index, "successor": str(102 + index)})  # fmt: skip
    events.append(
        {"event": protocol.CHAIN_ENDED, "job": "103", "t": T0 + 300, "state": "COMPLETED"}
    )
    return meta, events


def test_links_that_append_to_one_file_are_cut_apart(tmp_path: Path) -> None:
    log = tmp_path / "slurm-101.out"
    parts = ["one\n", "two\ntwo\n", "three\n"]
    log.write_text("".join(parts))
    offsets = [0, len(parts[0]), len(parts[0]) + len(parts[1])]
    meta, events = chain_events([(str(log), offset) for offset in offsets])
    view = build_view(meta, events, "COMPLETED")
    found = segments(view, events)
    assert [(s.start, s.end) for s in found] == [(0, 4), (4, 12), (12, None)]
    out = io.StringIO()
    print_logs(found, out)
    parts = re.split(r"^==> (.*) <==\n", out.getvalue(), flags=re.M)
    assert parts[0] == "" and parts[2::2] == ["one\n", "two\ntwo\n", "three\n"]
    assert [title.split(",")[0] for title in parts[1::2]] == ["link 1/10", "link 2/10", "link 3/10"]
    assert all(f"job {job}: COMPLETED" in t for job, t in zip((101, 102, 103), parts[1::2]))
    out = io.StringIO()
    print_logs(found, out, link=2)
    assert out.getvalue().endswith("<==\ntwo\ntwo\n") and out.getvalue().count("==>") == 1


def test_links_with_files_of_their_own_are_read_whole(tmp_path: Path) -> None:
    files = [tmp_path / f"out-{job}.log" for job in (101, 102, 103)]
    for number, path in enumerate(files, 1):
        path.write_text(f"link {number}\n")
    files[1].unlink()
    meta, events = chain_events([(str(path), 0) for path in files])
    out = io.StringIO()
    print_logs(segments(build_view(meta, events, "COMPLETED"), events), out)
    text = out.getvalue()
    assert "link 1\n" in text and "link 3\n" in text
    assert f"(the file {files[1]} is gone)" in text


def test_follow_prints_what_is_written_and_new_links_as_they_start(tmp_path: Path) -> None:
    log = tmp_path / "slurm-101.out"
    log.write_text("first\n")
    meta, events = chain_events([(str(log), 0), (str(log), len("first\nmore\n"))])
    stages = [(events[:3], None), (events[:3], "more\n"), (events, "second\n")]
    out = io.StringIO()
    reads = iter(range(100))

    def read() -> Any:
        step = min(next(reads), len(stages) - 1)
        shown, extra = stages[step]
        if (extra and step == len(stages) - 1) or (extra and step == 1):
            with log.open("a") as handle:
                handle.write(extra)
            stages[step] = (shown, None)
        view = build_view(meta, shown, "COMPLETED" if step == len(stages) - 1 else None)
        return view, segments(view, shown)

    follow(read, out, sleep=lambda _: None)
    text = out.getvalue()
    assert text.count("==> link 1/10") == 1 and text.count("==> link 2/10") == 1
    first, second = text.split("==> link 2/10")
    assert first.endswith("first\nmore\n") and second.endswith("<==\nsecond\n")


def test_logs_of_a_recorded_chain_without_output_records(tmp_path: Path) -> None:
    root = state_with(tmp_path, "three_links")
    chain_id = json.loads((Path(__file__).parent / "data" / "chains" / "three_links" /
                           protocol.META).read_text())["chain_id"]  # fmt: skip
    result = CliRunner().invoke(main, ["logs", chain_id, "--state-dir", str(root)])
    assert result.exit_code == 0, result.output
    assert result.output.count("no output file recorded") == 3
    result = CliRunner().invoke(main, ["logs", chain_id, "--link", "7", "--state-dir", str(root)])
    assert result.exit_code == 2 and "has no link 7" in result.output


# --- the timeline -----------------------------------------------------------------------------
def test_the_timeline_draws_each_link_as_it_ended_on_one_axis() -> None:
    text = timeline_text(view_of("timeout"), now=0)
    lines = text.splitlines()
    assert lines[0].endswith(": COMPLETED")
    first, second = (line for line in lines if line.startswith("link "))
    assert set(first[11:]) == {"T"} and second.rstrip().endswith("C")
    assert "C completed  T time limit" in lines[-1]
    assert all(len(line) <= 80 for line in lines)


def test_the_waits_between_links_are_visible_and_summed() -> None:
    view = view_of("three_links")
    text = timeline_text(view, now=0)
    rows = [line[11:] for line in text.splitlines() if line.startswith("link ")]
    # Each link waits (.) where the one before it ended, and runs after its wait.
    for before, after in zip(rows, rows[1:]):
        assert after.index(".") >= len(before.rstrip()) - 1
        assert after.rstrip()[-1] in "cC"
    waits = sum(
        link.start_epoch - previous
        for link, previous in zip(view.links[1:], [x.end_epoch for x in view.links])
        if link.start_epoch is not None and previous is not None
    )
    created = datetime.fromisoformat(view.created).timestamp()
    first_wait = (view.links[0].start_epoch or 0) - created
    assert f"Waiting in the queue: 00:00:{int(waits + first_wait):02d};" in text


def test_the_timeline_fits_a_narrow_terminal_and_colours_only_when_asked() -> None:
    for name in ("three_links", "timeout", "cancelled", "failed", "repaired"):
        plain = timeline_text(view_of(name), width=60, now=0)
        assert "\033[" not in plain
        assert all(len(line) <= 60 for line in plain.splitlines()), plain
    coloured = timeline_text(view_of("timeout"), width=60, color=True, now=0)
    assert f"\033[{GLYPHS['time limit'][1]}m█" in coloured


def test_status_timeline_on_the_command_line(tmp_path: Path) -> None:
    root = state_with(tmp_path, "failed")
    result = CliRunner().invoke(main, ["status", "--timeline", "--state-dir", str(root)])
    assert result.exit_code == 0, result.output
    assert "F failed" in result.output and "\033[" not in result.output


# --- completion ---------------------------------------------------------------------------------
def test_chain_and_job_ids_complete_from_the_state_directory(tmp_path: Path) -> None:
    root = state_with(tmp_path, "three_links", "timeout")
    words = f"longrun status --state-dir {root} "
    env = {"_LONGRUN_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": "4"}
    result = CliRunner().invoke(main, [], env=env, prog_name="longrun")
    values = [line.split(",", 1)[1] for line in result.output.splitlines()]
    chains = sorted((p.name for p in (root / "chains").iterdir()), reverse=True)
    jobs = {p.name for p in (root / "jobs").iterdir()}
    assert values[: len(chains)] == chains and set(values[len(chains) :]) == jobs
    prefix = sorted(jobs)[0][:3]
    env["COMP_WORDS"] = f"longrun status --state-dir {root} {prefix}"
    result = CliRunner().invoke(main, [], env=env, prog_name="longrun")
    completed = {line.split(",", 1)[1] for line in result.output.splitlines()}
    assert completed == {job for job in jobs if job.startswith(prefix)}


def test_an_array_is_one_row_per_element_on_one_axis() -> None:
    view = recorded("timeouts")
    text = timeline_text(view, now=0)
    rows = [line for line in text.splitlines() if line.startswith("elem ")]
    assert [row.split()[1] for row in rows] == [str(i) for i in view.elements]
    for row, element in zip(rows, view.elements.values()):
        marks = set(row[11:]) - {" ", ".", "|"}
        kinds = {states.link_kind(k.state, k.verdict, k.preempted) for k in element.links}
        assert marks == {GLYPHS[kind][0] for kind in kinds}, (row, kinds)
    assert "Running: " in text and all(len(line) <= 80 for line in text.splitlines())
    # Element 0 ran two links in a row that hit their time limit: a boundary keeps them two.
    assert rows[0].count("|") == 1 and "| the next link, of the same kind" in text
