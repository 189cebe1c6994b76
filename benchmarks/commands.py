"""How fast the commands that only read the state folder are: `longrun status` of a chain of
1,000 links, of an array of 1,000 elements, and `longrun list` over 500 chains.

    .venv/bin/python benchmarks/commands.py [--runs N]

The chains are made up (ended a day ago, so no Slurm command runs) and written as links write
them; each command runs as a user runs it (a new process of the installed `longrun`) and the
median is printed. No cluster is needed. Targets (issues): under 0.1 s for status and list,
0.5 s for the array. Each is timed twice: reading the chains' event logs (as for a chain that
is live or has just changed; the kept files are removed before each run, and the command
writes them again), and then with the row or view each chain's first read kept
(longrun/kept.py). An array's view is not kept.
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
from collections.abc import Callable
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


def write_chain(state: Path, chain_id: str, first_job: int, links: int, array: int = 0) -> None:
    folder = state / "chains" / chain_id
    (folder / "links").mkdir(parents=True)
    folder.chmod(0o700)
    meta = {"chain_id": chain_id, "job_name": "bench", "max_restarts": 999,
            "created": "2026-11-26T12:00:00"}  # fmt: skip
    if array:
        meta["array"] = {"spec": f"0-{array - 1}", "indices": list(range(array))}
    (folder / "chain.json").write_text(json.dumps(meta))
    (folder / "ended").write_text("COMPLETED\n")
    day_ago = time.time() - 86400
    os.utime(folder / "ended", (day_ago, day_ago))
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


def median_seconds(
    command: list[str], runs: int, before: Callable[[], None] = lambda: None
) -> float:
    times = []
    for _ in range(runs):
        before()
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def drop_kept(state: Path) -> None:
    for kept in (*state.glob("chains/*/summary.json"), *state.glob("chains/*/view.json")):
        kept.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    runs = parser.parse_args().runs
    script = Path(sys.executable).with_name("longrun")  # as users run it, when installed
    longrun = [str(script)] if script.exists() else [sys.executable, "-m", "longrun"]
    with tempfile.TemporaryDirectory() as tmp:
        results: dict[str, tuple[float, float | None]] = {}
        for name, chains, links, array in (
            ("status, a chain of 1,000 links", 1, 1000, 0),
            ("status, an array of 1,000 elements (2 links each)", 1, 2, 1000),
            ("list, 500 chains of 3 links", 500, 3, 0),
        ):
            state = Path(tmp) / str(len(results))
            (state / "jobs").mkdir(parents=True)
            for path in (state, state / "jobs"):
                path.chmod(0o700)
            for n in range(chains):
                write_chain(state, f"20261126-12{n // 60:02d}{n % 60:02d}-{n:04x}", 10**6 * (n + 1),
                            links, array)  # fmt: skip
            day_ago = time.time() - 86400  # nothing was added for a day: the folders say so
            for folder in (p for p in state.rglob("*") if p.is_dir()):
                os.utime(folder, (day_ago, day_ago))
            command = [*longrun, "list" if chains > 1 else "status", "--state-dir", str(state)]
            from_logs = median_seconds(command, runs, lambda state=state: drop_kept(state))
            results[name] = (from_logs, None if array else median_seconds(command, runs))
        bare = median_seconds([sys.executable, "-c", "pass"], runs)
    print(f"{'command':52} {'from the logs':>14} {'kept':>8}   (median of {runs} runs)")
    for name, (from_logs, kept) in results.items():
        print(f"{name:52} {from_logs:12.3f} s {'-' if kept is None else f'{kept:.3f} s':>8}")
    print(f"{'(python -c pass, for comparison)':52} {bare:12.3f} s")
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
