"""A chain that learns, at its edges (a second review of the learning steps): waiting for a
chain that has ended, the repair of one array element's grown memory, a host list with an
absurd number, hand-overs between links that ran."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from chainfiles import ended_chain

from longrun import chain_actions, slurm, states
from longrun.api import Chain
from longrun.chain_store import ChainFolder, StateDir
from longrun.slurm_output import QueueRow

ARRAYS = Path(__file__).parent / "data" / "arrays"


# --- 1. Chain.wait(timeout) on a chain that has ended raises TimeoutError ---------------------
def test_waiting_for_a_chain_that_has_already_ended_returns_its_end_at_once(
    tmp_path: Path,
) -> None:
    # The chain ended before wait() was called: its chain_ended event is in the log already,
    # but the watcher follows the log from its end, so it never "hears" the event and
    # _report_the_end sleeps up to 3 s for it; the api's sleep raises TimeoutError when the
    # deadline falls in those 3 s, for a chain that has ended.
    folder, _state = ended_chain(tmp_path)
    chain = Chain(folder)
    started = time.monotonic()
    assert chain.wait(timeout=1) == states.CHAIN_COMPLETED
    assert time.monotonic() - started < 1


# --- 2. an array element's repair asks for the memory another element grew to --------------
def test_an_array_elements_repair_asks_for_its_own_memory_not_another_elements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Element 4 (link 3227) grew its memory to 9999M. Element 2's last link 3228 ended by its
    # time limit and its successor could not be queued (stalled). The repair of element 2
    # takes the last memory_grown event of the whole array (_grown_memory(events)), so it
    # submits element 2's successor with --mem=9999M and --memory=mem=9999.
    state = StateDir(tmp_path / "state")
    state.ensure()
    meta = json.loads((ARRAYS / "timeouts" / "chain.json").read_text())
    path = state.chains / meta["chain_id"]
    shutil.copytree(ARRAYS / "timeouts", path)
    path.chmod(0o700)
    folder = ChainFolder(path)
    folder.write_env({"PATH": "/usr/bin:/bin"})
    shutil.rmtree(path / "links" / "3244")
    for element in (2,):
        for file in (path / "elements" / str(element)).iterdir():
            file.unlink()
    events_3228 = path / "links" / "3228" / "events.jsonl"
    lines = [
        line for line in events_3228.read_text().splitlines()
        if json.loads(line)["event"] != "successor_queued"
    ]  # fmt: skip
    now = int(time.time())
    lines.append(json.dumps({
        "time": "", "epoch": now, "t": now, "event": "chain_stalled", "job": "3228",
        "restart_count": 1, "reason": "no successor is queued: sbatch failed",
    }))  # fmt: skip
    events_3228.write_text("\n".join(lines) + "\n")
    with (path / "links" / "3227" / "events.jsonl").open("a") as handle:
        handle.write(json.dumps({
            "time": "", "epoch": now, "t": now, "event": "memory_grown", "job": "3227",
            "restart_count": 1, "option": "mem", "before": "5000", "after": "9999",
            "maximum": "0",
        }) + "\n")  # fmt: skip
    rows = {"3228": QueueRow("3228", states.TIMEOUT, "None", "0:05", "0:00", "", "")}
    submitted: list[list[str]] = []
    monkeypatch.setattr(slurm, "queue_rows", lambda jobs, clusters=(): rows)
    monkeypatch.setattr(slurm, "tagged_jobs", lambda tag, clusters=(): [])
    monkeypatch.setattr(slurm, "sbatch", lambda args, **_: submitted.append(list(args)) or "901")
    job = chain_actions.repair(folder, state, element=2)
    assert job == "901", "the setup does not make element 2 need a repair"
    (args,) = submitted
    assert not any("9999" in arg for arg in args), " ".join(args)


# --- held: the hand-over cap counts hand-overs in a row only ----------------------------------
def test_hand_overs_between_links_that_ran_never_add_up_to_the_cap(tmp_path: Path) -> None:
    from test_learning import already_avoided, ended, on_nodes, side_with

    from longrun import protocol

    side = side_with(tmp_path, max_restarts=50)
    side.partition_has("vm", "vm2")
    already_avoided(side, "vm")
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    previous, free = "", 0
    for restart in range(14):
        job = str(200 + restart)
        if previous:
            side.slurm_shows(previous, states.COMPLETED)
        args = (f"--free-links={free}",) if free else ()
        side.run(job, restart, previous, arguments=args,
                 slurm_env=on_nodes("vm" if restart % 2 == 0 else "vm2"))  # fmt: skip
        assert ended(side) == "", side.events(protocol.CHAIN_ENDED)
        free = int(side.submitted()[-1].split("--free-links=")[1].split()[0])
        previous = job
    assert len(side.bodies_run()) == 7


# --- 3. hostnames() is bounded in names, not in digits: a long number crashes the reader -----
def test_a_node_range_with_a_huge_number_does_not_break_longrun_status(tmp_path: Path) -> None:
    # Python refuses int() of more than 4300 digits (ValueError): the 10,000-character cut and
    # the 65,536-name bound come after int(high). One nodes_avoided event with such a range
    # (a corrupted learned file passes lr_read_learned's character check) makes reading the
    # chain fail.
    from test_hostile_files import LAST_EPOCH, TIMEOUT, add_line, chain, event, status

    from statetest import state_with

    state = state_with(tmp_path, "timeout", "failed")
    add_line(chain(state) / "links/143/events.jsonl",
             event("nodes_avoided", LAST_EPOCH, job="143", nodes="vm[0-" + "9" * 5000 + "]",
                   until=str(LAST_EPOCH + 3600), cause="NODE_FAIL"))  # fmt: skip
    result = status(state, TIMEOUT)
    assert "COMPLETED" in result.stdout, result.stdout + result.stderr
