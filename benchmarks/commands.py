"""How fast the commands that only read the state folder are: `longrun status` of a chain of
1,000 links, of an array of 1,000 elements, and `longrun list` over 500 chains.

    .venv/bin/python benchmarks/commands.py [--runs N]

The chains are made up (ended, so no Slurm command runs) and written as links write them;
each command runs as a user runs it (a new Python process) and the median is printed. No
cluster is needed. Targets (issues): under 0.1 s for status and list, 0.5 s for the array. The
chains ended a day ago, so the first `longrun list` keeps each chain's row and the first
`longrun status` the chain's view (longrun/kept.py), and the following ones read them back;
both are timed. Chains that ended a minute ago are read from their logs every time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE = 1795700000.0


def link_events(job: str, previous: str, count: int, last: bool) -> list[dict]:
    """What one link of a TIMEOUT chain writes, in order."""
    events = [{"event": "link_started", "previous": previous, "element": ""}]
    if previous:
        events.append(
            {"event": "judged", "previous": previous, "verdict": "interrupted",
             "slurm_state": "TIMEOUT", "outcome": "run", "start": "", "end": ""}
        )  # fmt: skip
    if not last:
        events.append({"event": "successor_queued", "successor": str(int(job) + 1)})
    events += [{"event": "body_started", "pid": "100"}, {"event": "body_exited", "exit_code": "0"}]
    verdict = "completed" if last else "interrupted"
    events.append({"event": "verdict", "verdict": verdict, "reason": "benchmark"})
    if last:
        events.append({"event": "chain_ended", "state": "COMPLETED", "reason": "done"})
    t = BASE + count * 60
    return [{"t": t + n, "epoch": int(t + n), "job": job, "restart_count": count, **e}
            for n, e in enumerate(events)]  # fmt: skip


def write_chain(
    state: Path, chain_id: str, first_job: int, links: int, array: int = 0, ended_ago: int = 86400
) -> None:
    folder = state / "chains" / chain_id
    (folder / "links").mkdir(parents=True)
    folder.chmod(0o700)
    meta = {"chain_id": chain_id, "job_name": "bench", "max_restarts": 999,
            "created": "2026-11-26T12:00:00"}  # fmt: skip
    if array:
        meta["array"] = {"spec": f"0-{array - 1}", "indices": list(range(array))}
    (folder / "chain.json").write_text(json.dumps(meta))
    (folder / "ended").write_text("COMPLETED\n")
    then = time.time() - ended_ago  # a day ago: `longrun list` keeps its row
    os.utime(folder / "ended", (then, then))
    (state / "jobs" / str(first_job)).write_text(chain_id + "\n")
    elements = range(array) if array else [None]
    job = first_job + 1
    for element in elements:
        previous = ""
        for count in range(links):
            events = link_events(str(job), previous, count, count == links - 1)
            if element is not None:
                events[0]["element"] = str(element)
            link_dir = folder / "links" / str(job)
            link_dir.mkdir()
            (link_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
            previous, job = str(job), job + 1
        if element is not None:
            ended = folder / "elements" / str(element) / "ended"
            ended.parent.mkdir(parents=True)
            ended.write_text("COMPLETED\n")


def median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    script = Path(sys.executable).with_name("longrun")  # as users run it, when installed
    longrun = [str(script)] if script.exists() else [sys.executable, "-m", "longrun"]
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for name, chains, links, array, ended_ago in (
            ("status, a chain of 1,000 links", 1, 1000, 0, 86400),
            ("status, a chain of 1,000 links that ended a minute ago", 1, 1000, 0, 60),
            ("status, an array of 1,000 elements (2 links each)", 1, 2, 1000, 86400),
            ("list, 500 chains of 3 links", 500, 3, 0, 86400),
            ("list, 500 chains of 3 links that ended a minute ago", 500, 3, 0, 60),
        ):
            state = Path(tmp) / str(len(results))
            (state / "jobs").mkdir(parents=True)
            for path in (state, state / "jobs"):
                path.chmod(0o700)
            for n in range(chains):
                write_chain(state, f"20261126-12{n // 60:02d}{n % 60:02d}-{n:04x}", 10**6 * (n + 1),
                            links, array, ended_ago)  # fmt: skip
            command = [*longrun, "list" if chains > 1 else "status", "--state-dir", str(state)]
            if not array and ended_ago > 600:  # an array's view is not kept, nor a recent one
                kept = "rows" if chains > 1 else "view"
                results[f"{name}, first time ({kept} not kept yet)"] = median_seconds(command, 1)
                name += f", {kept} kept"
            results[name] = median_seconds(command, runs)
        bare = median_seconds([sys.executable, "-c", "pass"], runs)
    print(f"{'command':66} median of {runs} runs")
    for name, seconds in results.items():
        print(f"{name:66} {seconds:.3f} s")
    print(f"{'(python -c pass, for comparison)':66} {bare:.3f} s")
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
