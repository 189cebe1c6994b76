"""Array chains from their events, without Slurm: chains recorded on the local cluster
(tests/unit/data/arrays, from tests/e2e/test_arrays.py) and a made-up array of 1,000 elements."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from longrun import protocol, states
from longrun.array_view import (
    REMOVED_BEFORE_START,
    array_state,
    build_array_view,
    elements_of_jobs,
)
from longrun.arrays import element_key, resolve_pattern
from longrun.chain_record import ChainRecord
from longrun.chain_store import ChainFolder

ARRAYS = Path(__file__).parent / "data" / "arrays"


def recorded(name: str, queue: dict | None = None, drop_ends: tuple[int, ...] = ()):
    folder = ChainFolder(ARRAYS / name)
    ends = {k: v for k, v in folder.element_ends().items() if k not in drop_ends}
    return build_array_view(folder.read_meta(), folder.read_events(), folder.ended(), ends, queue)


def test_five_elements_each_with_its_own_links() -> None:
    view = recorded("timeouts")
    assert view.state == states.CHAIN_COMPLETED
    assert view.counts == {"COMPLETED": 5}
    assert {i: len(e.links) for i, e in view.elements.items()} == {0: 3, 1: 2, 2: 3, 3: 2, 4: 3}
    for index, element in view.elements.items():
        assert element.chain_id == element_key(view.chain_id, index)
        assert [link.state for link in element.links][:-1] == ["TIMEOUT"] * (len(element.links) - 1)


def test_a_failed_element_fails_the_array() -> None:
    view = recorded("failed")
    assert view.state == states.CHAIN_FAILED
    assert view.counts == {"COMPLETED": 3, "FAILED": 1}
    assert view.to_json()["elements_by_state"] == {"COMPLETED": 3, "FAILED": 1}


def test_every_job_belongs_to_the_element_its_link_named() -> None:
    folder = ChainFolder(ARRAYS / "timeouts")
    events = folder.read_events()
    jobs = elements_of_jobs(events)
    for event in events:
        if event["event"] == protocol.LINK_STARTED:
            assert jobs[event["job"]] == int(event["element"])


def test_an_element_cancelled_before_it_started() -> None:
    # Recorded by `longrun status`, which asked Slurm once.
    assert recorded("scancel").elements[2].state == states.CHAIN_CANCELLED
    # Not recorded: waiting while Slurm is not asked; removed once squeue no longer shows it.
    assert recorded("scancel", drop_ends=(2,)).elements[2].state == states.CHAIN_PENDING
    view = recorded("scancel", queue={}, drop_ends=(2,))
    assert (view.elements[2].state, view.elements[2].reason) == (
        states.CHAIN_CANCELLED, REMOVED_BEFORE_START,
    )  # fmt: skip
    assert view.state == states.CHAIN_CANCELLED


def test_the_array_state_waits_for_every_element() -> None:
    assert array_state(["COMPLETED", "RUNNING", "FAILED"]) == "RUNNING"
    assert array_state(["COMPLETED", "PENDING"]) == "PENDING"
    assert array_state(["COMPLETED", "CANCELLED", "FAILED"]) == "FAILED"
    assert array_state(["COMPLETED", "COMPLETED"]) == "COMPLETED"


def test_python_resolves_output_patterns_as_the_job_side_does() -> None:
    # The same cases as test_job_side.test_an_elements_later_links_write_its_files.
    cases = {
        "slurm-%A_%a.out": "slurm-4000_7.out",
        "out_%a_%j.txt": "out_7_%j.txt",
        "%4a-%x-%%a.log": "0007-%x-%%a.log",
        "logs/%A/%3A.%a": "logs/4000/4000.7",
        "lit\\eral_%a": "lit\\eral_%a",
    }
    for pattern, expected in cases.items():
        assert resolve_pattern(pattern, "4000", 7) == expected


def write_big_array(root: Path, elements: int) -> ChainFolder:
    """An ended array chain of `elements` elements, two links each, as links write it."""
    chain_id = "20261126-120000-beef"
    folder = ChainFolder(root / "chains" / chain_id)
    (folder.path / "links").mkdir(parents=True)
    for path in (root, root / "chains", folder.path):
        path.chmod(0o700)
    (root / "jobs").mkdir()
    meta = ChainRecord.from_dict({
        "chain_id": chain_id, "job_name": "sweep", "max_restarts": 999,
        "array": {"spec": f"0-{elements - 1}", "indices": list(range(elements))},
    })  # fmt: skip
    folder.write_meta(meta)
    (root / "jobs" / "5000").write_text(chain_id + "\n")
    folder.append_event(protocol.SUBMITTED, job="5000", restart_count=0)
    for index in range(elements):
        first, second = str(10000 + 2 * index), str(10001 + 2 * index)
        for count, job in enumerate((first, second)):
            lines = [
                {"event": protocol.LINK_STARTED, "element": str(index), "previous": ""},
                {"event": protocol.SUCCESSOR_QUEUED, "successor": second} if count == 0 else {},
                {"event": protocol.BODY_EXITED, "exit_code": "75" if count == 0 else "0"},
                {
                    "event": protocol.VERDICT_RECORDED,
                    "verdict": "continue" if count == 0 else "completed",
                },
                {"event": protocol.CHAIN_ENDED, "state": "COMPLETED"} if count else {},
            ]
            link_dir = folder.link_dir(job)
            link_dir.mkdir()
            with open(link_dir / protocol.EVENTS, "w") as handle:
                for n, line in enumerate(e for e in lines if e):
                    record = {"t": 1795700000 + index + n / 10 + count, "epoch": 1795700000 + index}
                    record.update(job=job, restart_count=count, **line)
                    handle.write(json.dumps(record) + "\n")
        folder.set_ended("COMPLETED", index)
    return folder


def test_status_of_a_finished_1000_element_array_reads_only_the_chain_folder(
    tmp_path: Path,
) -> None:
    folder = write_big_array(tmp_path / "state", 1000)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("squeue", "sacct", "scontrol"):
        fake = bin_dir / name
        fake.write_text(f"#!/bin/sh\necho {name} >> {tmp_path / 'slurm-calls'}\nexit 1\n")
        fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    command = [
        sys.executable,
        "-m",
        "longrun",
        "status",
        "5000",
        "--state-dir",
        str(tmp_path / "state"),
    ]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "COMPLETED - 1000 elements: COMPLETED 1000" in result.stdout
    assert not (tmp_path / "slurm-calls").exists(), "Slurm was asked about finished elements"
    print(f"longrun status of a 1,000-element array (2,000 links): {elapsed:.2f} s")
    assert folder.element_ends()[999] == "COMPLETED"
