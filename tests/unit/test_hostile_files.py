"""Hostile files in a chain folder (issue 25): whatever a job, or anyone who can write there,
puts in place of an event file, a link's folder, the chain's metadata or a kept file, the
reading commands neither crash nor hang nor read elsewhere, and one bad chain never hides the
others from `longrun list`. The commands run as users run them (the installed `longrun`, in a
process of its own), each under a time and a memory limit: a reader that would wait on a FIFO
or read /dev/zero without end fails its test, not the machine."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from longrun import protocol
from longrun.report import event_line
from statetest import state_with

SECONDS = 10  # a command still running after this long hangs
MEMORY = 1 << 30  # a command's address space: room for the 64 MiB read cap, not for /dev/zero
TIMEOUT = "20261125-212828-8506"  # the chain that is attacked (recorded: timeout, 2 links)
FAILED = "20261125-212828-7405"  # the chain beside it, listed whatever happens to the other
ARRAY = Path(__file__).parent / "data" / "arrays" / "timeouts"
LAST_EPOCH = 1795642189  # the last event of the attacked chain
DEEP = 200_000  # nesting levels: far beyond what json.loads parses (RecursionError)


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def longrun(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`longrun ARGS --state-dir STATE`; fails the test if it hangs or prints a traceback."""
    installed = Path(sys.executable).parent / "longrun"
    try:
        result = subprocess.run(
            [str(installed), *args, "--state-dir", str(state)], capture_output=True, text=True,
            timeout=SECONDS, preexec_fn=_limits, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"`longrun {' '.join(args)}` hung: still running after {SECONDS} s")
    assert "Traceback" not in result.stderr, result.stderr
    return result


def listed(state: Path, *options: str) -> dict[str, dict[str, Any]]:
    """The rows of `longrun list --json`, by chain id; the command must succeed."""
    result = longrun(state, "list", "--json", *options)
    assert result.returncode == 0, result.stderr
    return {row["chain_id"]: row for row in json.loads(result.stdout)}


def status(state: Path, chain: str, *options: str) -> subprocess.CompletedProcess[str]:
    result = longrun(state, "status", chain, *options)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return state_with(tmp_path, "timeout", "failed")


def chain(state: Path, chain_id: str = TIMEOUT) -> Path:
    return state / protocol.CHAINS / chain_id


def add_line(path: Path, line: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(line + "\n")


def event(name: str, epoch: int, **fields: Any) -> str:
    return json.dumps({"epoch": epoch, "t": epoch, "event": name, **fields})


def assert_chains_intact(state: Path) -> None:
    """Both chains are listed as recorded, the attacked one with its own last event, and
    `longrun status` shows it (the timeline and --json too)."""
    for options in ((), ("--live",)):
        rows = listed(state, *options)
        assert rows if not options else rows == {}, rows  # --live: both chains have ended
    rows = listed(state)
    assert {chain_id: row["state"] for chain_id, row in rows.items()} == {
        TIMEOUT: "COMPLETED", FAILED: "FAILED",
    }  # fmt: skip
    assert rows[TIMEOUT]["last_change_epoch"] == LAST_EPOCH
    assert "COMPLETED" in status(state, TIMEOUT).stdout
    status(state, TIMEOUT, "--timeline")
    assert len(json.loads(status(state, TIMEOUT, "--json").stdout)["links"]) == 2


# --- event files whose content is hostile ------------------------------------------------------
EVENT_FILES = ("events.jsonl", "events.d/login.1.jsonl", "links/143/events.jsonl")


@pytest.mark.parametrize("place", EVENT_FILES)
def test_json_nested_too_deep_for_the_parser_is_skipped(state: Path, place: str) -> None:
    add_line(chain(state) / place, '{"event": "x", "a": ' + "[" * DEEP + "]" * DEEP + "}")
    assert "a damaged event line was skipped" in status(state, TIMEOUT).stderr
    assert_chains_intact(state)


@pytest.mark.parametrize(
    "epoch", ["1e999", "-1e999", "9" * 400, '"' + "9" * 400 + '"'],
    ids=["inf", "-inf", "400 digits", "400 digits as text"],
)  # fmt: skip
def test_an_absurd_epoch_is_not_a_time(state: Path, epoch: str) -> None:
    add_line(chain(state) / EVENT_FILES[1], f'{{"event": "watch_ended", "epoch": {epoch}}}')
    assert_chains_intact(state)


def test_unicode_digits_are_not_an_output_offset(state: Path, tmp_path: Path) -> None:
    output = tmp_path / "slurm-999.out"
    output.write_text("the output of link 3\n")
    add_line(
        chain(state) / EVENT_FILES[2].replace("143", "999"),
        event("link_started", LAST_EPOCH + 1, job="999", restart_count=2, output=str(output),
              output_offset="²", error=str(output), error_offset="³"),
    )  # fmt: skip
    for options in ((), ("--stderr",), ("--link", "3")):
        result = longrun(state, "logs", TIMEOUT, *options)
        assert result.returncode == 0, result.stderr
        assert "the output of link 3" in result.stdout  # read from the start


def test_unicode_digits_are_not_a_requeue_count() -> None:
    line = event_line({"event": "link_started", "job": "143", "slurm_restarts": "²"}, 999, False)
    assert line == "Watching job 143 (link ?)"  # what the watcher prints


def test_unicode_digits_are_not_an_array_element(state: Path) -> None:
    array_id = json.loads((ARRAY / protocol.META).read_text())["chain_id"]
    shutil.copytree(ARRAY, chain(state, array_id))
    for path in (chain(state, array_id), *chain(state, array_id).rglob("*")):
        path.chmod(0o700 if path.is_dir() else 0o600)
    add_line(
        chain(state, array_id) / protocol.EVENTS_DIR / "login.1.jsonl",
        event("link_started", LAST_EPOCH, job="888", restart_count=1, element="²"),
    )
    assert listed(state)[array_id]["state"] == "COMPLETED"
    assert "COMPLETED 5" in status(state, array_id).stdout


# --- event files that are not regular files ----------------------------------------------------
OUTSIDE_JOB = "666"  # a job that only files outside the chain folder name


def outside_events(tmp_path: Path) -> Path:
    """A folder outside the state folder, whose event file names a job of its own."""
    folder = tmp_path / "elsewhere"
    add_line(folder / protocol.EVENTS, event("link_started", LAST_EPOCH + 9, job=OUTSIDE_JOB))
    return folder


def fifo(path: Path, tmp_path: Path) -> None:
    os.mkfifo(path)


def dev_zero(path: Path, tmp_path: Path) -> None:
    path.symlink_to("/dev/zero")


def folder(path: Path, tmp_path: Path) -> None:
    path.mkdir()


def link_outside(path: Path, tmp_path: Path) -> None:
    path.symlink_to(outside_events(tmp_path) / protocol.EVENTS)


# How each is made, and the warning that names it.
NOT_REGULAR: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    "fifo": (fifo, "a FIFO, not read"),
    "link to /dev/zero": (dev_zero, "a symbolic link, not followed"),
    "folder": (folder, "a folder, not read"),
    "link outside": (link_outside, "a symbolic link, not followed"),
}


@pytest.mark.parametrize("kind", NOT_REGULAR)
@pytest.mark.parametrize("place", EVENT_FILES)
def test_an_event_file_that_is_not_a_regular_file_is_not_read(
    state: Path, tmp_path: Path, place: str, kind: str
) -> None:
    path = chain(state) / place
    if place == protocol.EVENTS:  # the old single log: its events go to a writer's file
        add_line(path.parent / EVENT_FILES[1], path.read_text().rstrip("\n"))
        path.unlink()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    make, warning = NOT_REGULAR[kind]
    make(path, tmp_path)
    result = status(state, TIMEOUT, "--json")
    assert OUTSIDE_JOB not in jobs(result)
    assert f"{path}: {warning}" in result.stderr
    assert_chains_intact(state)


def jobs(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The jobs of a chain's links, as `longrun status --json` shows them."""
    return [link["job_id"] for link in json.loads(result.stdout)["links"]]


def test_a_link_folder_that_is_a_symbolic_link_is_not_read(state: Path, tmp_path: Path) -> None:
    (chain(state) / protocol.LINKS).mkdir(mode=0o700, exist_ok=True)
    (chain(state) / protocol.LINKS / OUTSIDE_JOB).symlink_to(outside_events(tmp_path))
    assert OUTSIDE_JOB not in jobs(status(state, TIMEOUT, "--json"))
    assert_chains_intact(state)


def test_an_event_file_is_read_up_to_the_cap_only(state: Path) -> None:
    path = chain(state) / EVENT_FILES[1]
    add_line(path, event("watch_ended", LAST_EPOCH))
    with path.open("r+b") as handle:  # sparse: 70 MiB of NUL bytes cost no disk
        handle.truncate(70 << 20)
    add_line(path, "\n" + event("watch_ended", LAST_EPOCH + 100))  # beyond the cap
    assert "only its first 64 MiB are read" in status(state, TIMEOUT).stderr
    assert_chains_intact(state)  # the last change is not the event beyond the cap


@pytest.mark.parametrize("kind", ["fifo", "link outside"])
def test_logs_never_follow_a_link_or_wait_on_a_fifo(state: Path, tmp_path: Path, kind: str) -> None:
    """A link's output file is its own record: `longrun logs` refuses one that is not a
    regular file, once even with --follow, and goes on with the other links."""
    output = tmp_path / "slurm-999.out"
    if kind == "fifo":
        os.mkfifo(output)
    else:
        (tmp_path / "secret").write_text("not the chain's\n")
        output.symlink_to(tmp_path / "secret")
    add_line(
        chain(state) / EVENT_FILES[2].replace("143", "999"),
        event("link_started", LAST_EPOCH + 1, job="999", restart_count=2, output=str(output),
              output_offset="0"),
    )  # fmt: skip
    warning = "a FIFO, not read" if kind == "fifo" else "a symbolic link, not followed"
    for options in ((), ("--link", "3"), ("--follow",)):
        result = longrun(state, "logs", TIMEOUT, *options)
        assert result.returncode == 0, result.stderr
        assert result.stdout.count(f"(cannot read {output}: {warning})") == 1, result.stdout
        assert "not the chain's" not in result.stdout


# --- a chain that cannot be read: a DAMAGED row, the others listed ------------------------------
def deep_meta(path: Path, tmp_path: Path) -> None:
    path.write_text("[" * DEEP + "]" * DEEP)


def infinite_max_restarts(path: Path, tmp_path: Path) -> None:
    path.write_text(path.read_text().replace('"max_restarts": 999', '"max_restarts": 1e999'))


def replaced(make: Callable[[Path, Path], None]) -> Callable[[Path, Path], None]:
    def replace(path: Path, tmp_path: Path) -> None:
        path.unlink()
        make(path, tmp_path)

    return replace


# What is damaged, how, and what `longrun list` and `longrun status` say ({path}: its path).
DAMAGE: dict[str, tuple[str, Callable[[Path, Path], None], str]] = {
    "chain.json nested too deep": (
        protocol.META, deep_meta, "cannot read {path}: maximum recursion depth exceeded"
    ),
    "chain.json a fifo": (protocol.META, replaced(fifo), "cannot read {path}: a FIFO, not read"),
    "chain.json a link to /dev/zero": (
        protocol.META, replaced(dev_zero), "cannot read {path}: a symbolic link, not followed"
    ),
    "max_restarts inf": (
        protocol.META, infinite_max_restarts,
        "cannot read {path}: max_restarts is not a whole number",
    ),
    "ended a fifo": (
        protocol.ENDED, replaced(fifo), f"chain {TIMEOUT} is damaged: {{path}}: a FIFO, not read"
    ),
}  # fmt: skip


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_chain_is_listed_as_such_beside_the_others(
    state: Path, tmp_path: Path, damage: str
) -> None:
    name, make, message = DAMAGE[damage]
    make(chain(state) / name, tmp_path)
    rows = listed(state)
    assert {chain_id: row["state"] for chain_id, row in rows.items()} == {
        TIMEOUT: "DAMAGED", FAILED: "FAILED",
    }  # fmt: skip
    why = rows[TIMEOUT]["reason"]
    assert why.startswith(message.format(path=chain(state) / name))
    text = longrun(state, "list")
    assert text.returncode == 0, text.stderr
    assert why in text.stdout.splitlines()  # below the table
    assert FAILED in text.stdout
    assert {chain_id: row["state"] for chain_id, row in listed(state, "--live").items()} == {
        TIMEOUT: "DAMAGED"
    }
    result = longrun(state, "status", TIMEOUT)
    assert result.returncode == 2
    assert result.stderr.startswith("longrun: error: ") and why in result.stderr
    # The other commands that read a chain say the same, without a traceback or a question to
    # Slurm: `verify` reports it as the chain's problem, `watch` as an error.
    # (a wrong value in chain.json too: the record is read, typed, before anything is done)
    verified = longrun(state, "verify", TIMEOUT)
    assert verified.returncode == 1 and f"  - {why}" in verified.stdout.splitlines()
    cancelled = longrun(state, "cancel", TIMEOUT)
    assert cancelled.returncode == 2 and why in cancelled.stderr
    watched = longrun(state, "watch", TIMEOUT)
    assert watched.returncode == 2 and why in watched.stderr


def test_show_never_waits_on_a_fifo(state: Path) -> None:
    os.mkfifo(chain(state) / protocol.LINK_SCRIPT)
    result = longrun(state, "show", TIMEOUT)
    assert result.returncode == 2
    assert result.stderr == (
        f"longrun: error: cannot read {chain(state) / protocol.LINK_SCRIPT}: a FIFO, not read\n"
    )


# --- cached files (longrun/view_cache.py) -------------------------------------------------------
def age(state: Path) -> None:
    """The chains' folders as if nothing had changed in them for a while (so rows are kept)."""
    then = time.time() - 60
    for path in (state, *(p for p in state.rglob("*") if p.is_dir())):
        os.utime(path, (then, then))


@pytest.mark.parametrize("name", [protocol.SUMMARY, protocol.KEPT_VIEW])
def test_a_kept_file_that_is_a_fifo_is_not_read(state: Path, tmp_path: Path, name: str) -> None:
    os.mkfifo(chain(state) / name)
    assert_chains_intact(state)


def test_a_kept_row_with_an_absurd_time_is_not_used(state: Path) -> None:
    age(state)
    listed(state)  # keeps the rows
    summary = chain(state) / protocol.SUMMARY
    kept = json.loads(summary.read_text())
    kept["data"]["last_change_epoch"] = 10**400
    summary.write_text(json.dumps(kept))
    assert_chains_intact(state)
