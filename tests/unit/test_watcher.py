"""The watcher's loop on a simulated clock: how often it asks Slurm, and without accounting.

Slurm's commands are replaced by a stub that answers squeue with a running link and a pending
successor and refuses sacct, as when slurmdbd is down. This tests longrun's loop, not Slurm; the
watcher on the real cluster is tested in tests/e2e/test_watch.py.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from longrun import slurm, watcher
from longrun.chain_record import ArrayRecord, ChainRecord
from longrun.chain_store import ChainFolder, StateDir
from longrun.errors import SlurmCommandError
from longrun.watcher import WatchSettings

CHAIN = Path(__file__).parent / "data" / "chains" / "three_links"


class Stop(Exception):
    pass


class Simulation:
    """A fake clock, and a stand-in for the one module that runs Slurm's commands."""

    def __init__(self, running: str, successor: str, until: float) -> None:
        self.now = 0.0
        self.until = until
        self.calls: list[tuple[float, str]] = []
        self.rows = f"{running}|RUNNING|None|0:10|UNLIMITED|2026-11-25T21:29:52|NONE|\n"
        self.rows += f"{successor}|PENDING|Dependency|0:00|UNLIMITED|N/A|N/A|\n"

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        if self.now >= self.until:
            raise Stop

    def run(self, args: Sequence[str], **_: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append((self.now, args[0]))
        if args[0] == "sacct":
            raise SlurmCommandError(list(args), "sacct: error: Problem talking to the database")
        assert args[0] == "squeue", args
        return subprocess.CompletedProcess(list(args), 0, self.rows, "")


def new_state(tmp_path: Path) -> StateDir:
    state = StateDir(tmp_path / "state")
    state.chains.mkdir(parents=True, mode=0o700)
    state.root.chmod(0o700)
    return state


def running_chain(tmp_path: Path) -> tuple[ChainFolder, StateDir, str, str]:
    """A copy of a real chain's folder, cut where link 0 runs and its successor waits."""
    state = new_state(tmp_path)
    folder = ChainFolder(state.chains / json.loads((CHAIN / "chain.json").read_text())["chain_id"])
    folder.path.mkdir(mode=0o700)
    shutil.copy(CHAIN / "chain.json", folder.meta_file)
    events = (CHAIN / "events.jsonl").read_text().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(events) if '"body_started"' in line) + 1
    folder.events_file.write_text("".join(events[:cut]))
    running = json.loads(events[1])["job"]
    successor = next(json.loads(e)["successor"] for e in events[:cut] if "successor_queued" in e)
    return folder, state, running, successor


def run_until_stopped(folder: ChainFolder, state: StateDir, simulation: Simulation) -> io.StringIO:
    """Watch with default settings on the simulated clock until the simulation ends."""
    out = io.StringIO()
    with pytest.raises(Stop):
        watcher.watch(
            folder, state, settings=WatchSettings(), output=watcher.Output(out),
            clock=simulation.clock, sleep=simulation.sleep,
        )  # fmt: skip
    return out


@pytest.mark.parametrize("minutes", [10, 60])
def test_one_squeue_call_per_30_s_while_a_link_runs_and_no_sacct(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, minutes: int
) -> None:
    folder, state, running, successor = running_chain(tmp_path)
    simulation = Simulation(running, successor, until=minutes * 60)
    monkeypatch.setattr(slurm, "run", simulation.run)
    out = run_until_stopped(folder, state, simulation)
    squeue = [at for at, name in simulation.calls if name == "squeue"]
    assert [name for _, name in simulation.calls if name != "squeue"] == []
    assert len(squeue) <= minutes * 2 + 1
    assert all(later - earlier >= 30 for earlier, later in zip(squeue, squeue[1:]))
    # Not a terminal: a plain status line at each 10 minutes (the simulation stops at the last).
    status_lines = [line for line in out.getvalue().splitlines() if "] [link 1/1000] job" in line]
    assert len(status_lines) == minutes // 10 - 1


def test_a_stalled_chain_waits_for_sacct_and_says_so_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, state, running, successor = running_chain(tmp_path)
    simulation = Simulation(running, successor, until=600)
    simulation.rows = ""  # nothing queued, and sacct refuses: how link 0 ended is unknown
    monkeypatch.setattr(slurm, "run", simulation.run)
    out = run_until_stopped(folder, state, simulation)
    names = [name for _, name in simulation.calls]
    # No answer is not an answer: asked again at each look (60 s apart), never repaired.
    # (The first squeue call only says where the chain stands when the watcher starts.)
    assert names.count("squeue") >= 5 and names.count("sacct") == names.count("squeue") - 1
    assert "sbatch" not in names
    assert out.getvalue().count("sacct did not answer") == 1
    assert "Traceback" not in out.getvalue()


def running_array(tmp_path: Path, elements: int) -> tuple[ChainFolder, StateDir, str]:
    """An array chain whose every element's first link runs with a successor queued; the
    squeue rows of all of them (tasks of array 5000 running as jobs 10000..., successors)."""
    state = new_state(tmp_path)
    folder = ChainFolder(state.chains / "20261126-120000-beef")
    (folder.path / "links").mkdir(parents=True, mode=0o700)
    folder.path.chmod(0o700)
    array = ArrayRecord(spec=f"0-{elements - 1}", indices=tuple(range(elements)))
    folder.write_meta(
        ChainRecord(chain_id=folder.chain_id, job_name="sweep", max_restarts=999, array=array)
    )
    folder.append_event("submitted", job="5000", restart_count=0)
    rows = ""
    for index in range(elements):
        job, successor = str(10000 + index), str(20000 + index)
        link_dir = folder.link_dir(job)
        link_dir.mkdir()
        (link_dir / "events.jsonl").write_text(
            json.dumps({"t": 1.0, "epoch": 1, "event": "link_started", "job": job,
                        "restart_count": 0, "element": str(index)}) + "\n"
            + json.dumps({"t": 2.0, "epoch": 2, "event": "successor_queued", "job": job,
                          "restart_count": 0, "successor": successor}) + "\n"
        )  # fmt: skip
        rows += f"{job}|RUNNING|None|0:10|UNLIMITED|2026-11-26T12:00:00|NONE|N/A|5000|{index}|\n"
        rows += f"{successor}|PENDING|Dependency|0:00|UNLIMITED|N/A|N/A|N/A|{successor}|N/A|\n"
    return folder, state, rows


def test_the_array_watcher_makes_one_squeue_call_per_interval_for_every_element(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, state, rows = running_array(tmp_path, 300)
    simulation = Simulation("0", "0", until=10 * 60)
    simulation.rows = rows
    monkeypatch.setattr(slurm, "run", simulation.run)
    out = run_until_stopped(folder, state, simulation)
    squeue = [at for at, name in simulation.calls if name == "squeue"]
    assert [name for _, name in simulation.calls if name != "squeue"] == []
    assert 10 <= len(squeue) <= 21
    assert all(later - earlier >= 30 for earlier, later in zip(squeue, squeue[1:]))
    assert "RUNNING - elements: RUNNING 300" in out.getvalue()


def test_the_end_is_told_in_the_words_of_the_link_that_recorded_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link records the chain's end as a file, then writes the event that says why: a
    watcher that sees the file first waits a moment for the event (seen on a loaded machine)."""
    folder, state, running, successor = running_chain(tmp_path)
    simulation = Simulation(running, successor, until=600)
    monkeypatch.setattr(slurm, "run", simulation.run)
    later = json.dumps(
        {"event": "chain_ended", "job": running, "restart_count": 0, "state": "FAILED",
         "reason": "the script failed (exit 3)", "epoch": 1795642189, "time": "x"}
    )  # fmt: skip

    def sleep(seconds: float) -> None:
        if not folder.ended_file.exists():  # the link records the end as the watch goes on
            folder.ended_file.write_text("FAILED\n")
        else:  # and writes its event a moment later
            with folder.events_file.open("a") as events:
                events.write(later + "\n")
        simulation.sleep(seconds)

    out = io.StringIO()
    assert watcher.watch(
        folder, state, settings=WatchSettings(), output=watcher.Output(out),
        clock=simulation.clock, sleep=sleep,
    ) == "FAILED"  # fmt: skip
    assert "Chain ended FAILED: the script failed (exit 3)" in out.getvalue()
    assert simulation.now < 10
