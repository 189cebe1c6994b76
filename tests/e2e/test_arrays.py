"""Job arrays as chains, on the local cluster: each element its own chain, one command for all.

The invariants are checked from Slurm's accounting: no two links of one element overlap, each
element's work is done exactly once, and a throttle holds for what the README promises.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chaintest import WATCH_FAST, assert_verified, environment, run_cli
from longrun import slurm
from slurmtest import Cluster, wait_for

pytestmark = pytest.mark.slurm

FAST = WATCH_FAST


class Array:
    """An array chain submitted by a test."""

    def __init__(self, workdir: Path, array_job: str) -> None:
        self.workdir = workdir
        self.state = workdir / "state"
        self.array_job = array_job
        self.chain_id = (self.state / "jobs" / array_job).read_text().strip()

    def longrun(self, *args: str) -> str:
        result = run_cli(
            "longrun", *args, "--state-dir", str(self.state), cwd=self.workdir, env=environment()
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def status(self, element: int | None = None) -> dict:
        extra = ["--element", str(element)] if element is not None else []
        return json.loads(self.longrun("status", self.chain_id, "--json", *extra))

    def wait_end(self, timeout: float = 300) -> dict:
        def ended() -> dict | None:
            view = self.status()
            return view if view["state"] not in ("RUNNING", "PENDING", "STALLED") else None

        return wait_for(ended, timeout=timeout, interval=2, what=f"array {self.chain_id}")

    def links(self, element: int) -> list[dict]:
        return self.status(element)["links"]


def submit_array(
    workdir: Path, script: str, *sbatch_args: str, watch: bool = False
) -> tuple[Array, str, int]:
    """Submit `script` with sbatch_longrun; with `watch`, wait for its watcher's exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "job.sh").write_text(script)
    wrapper = [] if watch else ["--no-watch"]
    result = run_cli(
        "sbatch_longrun", *wrapper, "--state-dir", str(workdir / "state"), *sbatch_args,
        "job.sh", cwd=workdir, env=environment(**FAST),
    )  # fmt: skip
    first = result.stdout.splitlines()[0]
    assert first.startswith("Submitted batch job "), result.stdout + result.stderr
    return Array(workdir, first.split()[-1]), result.stdout + result.stderr, result.returncode


def accounting(array: Array, first_links: int) -> list[dict[str, str]]:
    """Every job of the array chain in sacct: the array's tasks and the elements' later links,
    once slurmdbd holds the end of all `first_links` tasks (it may lag behind slurmctld)."""
    jobs = {array.array_job}
    for element in array.status()["elements"]:
        jobs |= {link["job_id"] for link in array.links(element["element"])}
    keys = ("job", "raw", "state", "start", "end")

    def ended() -> list[dict[str, str]] | None:
        out = slurm.run(
            ["sacct", "-n", "-X", "-P", "-j", ",".join(sorted(jobs)), "-o",
             "JobID,JobIDRaw,State,Start,End"],
        ).stdout  # fmt: skip
        rows = [
            dict(zip(keys, line.split("|"))) for line in out.splitlines() if line.count("|") == 4
        ]
        tasks = [r for r in rows if "_" in r["job"] and r["end"][:1].isdigit()]
        return rows if len(tasks) >= first_links else None

    return wait_for(ended, timeout=60, what=f"sacct to hold the end of {first_links} tasks")


def started(workdir: Path, array: Array, elements: tuple[int, ...]) -> None:
    """Wait until the script of each element's first link runs (it prints its first line)."""

    def running() -> bool:
        outs = [workdir / f"out_{array.array_job}_{element}.txt" for element in elements]
        return all(out.exists() and "link=0" in out.read_text() for out in outs)

    wait_for(running, timeout=120, what=f"the scripts of elements {elements}")


def most_at_once(spans: list[tuple[str, str]]) -> int:
    """The most spans (Slurm start and end times) that overlap at one moment."""
    points = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, step in points:  # an end sorts before a start at the same second
        running += step
        most = max(most, running)
    return most


def assert_no_overlap_within_elements(array: Array) -> None:
    assert_verified(array.state / "chains" / array.chain_id)
    said = array.longrun("verify", array.chain_id)
    count = len(array.status()["elements"])
    assert said.endswith(f"{count} of {count} chain(s) kept every promise.\n"), said
    for element in array.status()["elements"]:
        links = array.links(element["element"])
        for before, after in zip(links, links[1:]):
            assert before["end"] <= after["start"], (element, before, after)


# Each link does 10 steps of its element's work, then waits for its one-minute time limit;
# elements 0, 2 and 4 need 25 steps (3 links), 1 and 3 need 15 (2 links). The work log is the
# checkpoint: one line per step, so a step done twice or skipped shows.
ONE_MINUTE_LINKS = """#!/bin/bash
#SBATCH --time=1
#SBATCH -o out_%A_%a.txt
log=work_$SLURM_ARRAY_TASK_ID.log
total=$(( SLURM_ARRAY_TASK_ID % 2 == 0 ? 25 : 15 ))
echo "link=$SLURM_LONGRUN_RESTART_COUNT task=$SLURM_ARRAY_TASK_ID job=$SLURM_JOB_ID \
array=$SLURM_ARRAY_JOB_ID count=$SLURM_ARRAY_TASK_COUNT min=$SLURM_ARRAY_TASK_MIN \
max=$SLURM_ARRAY_TASK_MAX step=$SLURM_ARRAY_TASK_STEP element=$SLURM_LONGRUN_ARRAY_TASK_ID"
done_steps=$(cat "$log" 2>/dev/null | wc -l)
for _ in $(seq 10); do
  [ "$done_steps" -ge "$total" ] && break
  echo "$done_steps $SLURM_JOB_ID" >> "$log"
  done_steps=$((done_steps + 1))
done
[ "$done_steps" -ge "$total" ] && exit 0
sleep 600
"""


def test_five_elements_with_one_minute_links_each_finish_their_own_work(
    cluster: Cluster, tmp_path: Path
) -> None:
    # In `multi` (no preemption there), so that other tests' preemptions do not add links.
    array, _, _ = submit_array(tmp_path, ONE_MINUTE_LINKS, "--array=0-4", "-p", "multi")
    view = array.wait_end(timeout=600)
    assert view["state"] == "COMPLETED", view
    assert view["elements_by_state"] == {"COMPLETED": 5}
    for element in range(5):
        links = array.links(element)
        expected = 3 if element % 2 == 0 else 2
        # A node failure caused by another test may stand in for a time limit; it adds no link,
        # since each link does its steps first.
        assert len(links) == expected, (element, links)
        assert {link["state"] for link in links[:-1]} <= {"TIMEOUT", "NODE_FAIL"}, links
        assert links[-1]["state"] == "COMPLETED"
        steps = (tmp_path / f"work_{element}.log").read_text().split("\n")[:-1]
        assert [int(line.split()[0]) for line in steps] == list(range(25 if expected == 3 else 15))
        out = (tmp_path / f"out_{array.array_job}_{element}.txt").read_text()
        lines = [line for line in out.splitlines() if line.startswith("link=")]
        assert len(lines) == expected, out
        for count, line in enumerate(lines):
            job = links[count]["job_id"]
            assert line == (
                f"link={count} task={element} job={job} array={array.array_job} count=5 min=0 "
                f"max=4 step=1 element={element}"
            )
    assert sorted(p.name for p in tmp_path.glob("out_*")) == [
        f"out_{array.array_job}_{i}.txt" for i in range(5)
    ]
    assert_no_overlap_within_elements(array)
    # `longrun logs --element 0`: the element's one file, cut at each of its links.
    logs = array.longrun("logs", f"{array.array_job}_0")
    out = (tmp_path / f"out_{array.array_job}_0.txt").read_text()
    lines0 = [line for line in out.splitlines() if line.startswith("link=")]
    parts = re.split(r"^==> (.*) <==\n", logs, flags=re.M)[1:]
    headers, outputs = parts[0::2], parts[1::2]
    assert [h.split(",")[0] for h in headers] == ["link 1/1000", "link 2/1000", "link 3/1000"]
    for count, output in enumerate(outputs):
        assert [line for line in output.splitlines() if line.startswith("link=")] == [
            line for line in lines0 if line.startswith(f"link={count} ")
        ]


# The first link of each element asks for a new one (exit 75); element 2 fails instead.
CONTINUE_ONCE = """#!/bin/bash
#SBATCH -o out_%A_%a.txt
echo "link=$SLURM_LONGRUN_RESTART_COUNT task=$SLURM_ARRAY_TASK_ID"
[ "$SLURM_ARRAY_TASK_ID" = "${FAILING:-none}" ] && exit 3
if [ -n "${WAIT:-}" ]; then
  while [ ! -e "go_$SLURM_ARRAY_TASK_ID" ]; do sleep 0.5; done
fi
[ "$SLURM_LONGRUN_RESTART_COUNT" -ge 1 ] || exit "$SLURM_LONGRUN_CONTINUE_CODE"
"""


def test_one_failed_element_fails_the_array_and_its_watcher_but_not_the_others(
    cluster: Cluster, tmp_path: Path
) -> None:
    script = CONTINUE_ONCE.replace("${FAILING:-none}", "2")
    array, output, returncode = submit_array(
        tmp_path, script, "--array=0-3", "-p", "multi", watch=True
    )
    assert returncode == 1, output
    assert "Element 2 ended FAILED after 1 link(s): the script failed (exit 3)" in output
    assert f"Array chain {array.chain_id} FAILED: elements: COMPLETED 3, FAILED 1" in output
    view = array.status()
    assert view["state"] == "FAILED"
    assert {e["element"]: (e["state"], e["links"]) for e in view["elements"]} == {
        0: ("COMPLETED", 2), 1: ("COMPLETED", 2), 2: ("FAILED", 1), 3: ("COMPLETED", 2),
    }  # fmt: skip
    row = next(line for line in array.longrun("list").splitlines() if array.chain_id in line)
    assert row.split()[1:4] == ["job.sh", "FAILED", "7"] and "COMPLETED 3, FAILED 1" in row


@pytest.mark.disruptive  # the preemptor takes the whole node
def test_preemption_of_a_running_element_continues_that_element_only(
    cluster: Cluster, tmp_path: Path
) -> None:
    # Element 1 finishes at once; element 0 runs until the test has preempted it.
    script = """#!/bin/bash
#SBATCH -o out_%A_%a.txt
echo "link=$SLURM_LONGRUN_RESTART_COUNT task=$SLURM_ARRAY_TASK_ID"
[ "$SLURM_ARRAY_TASK_ID" = 1 ] && exit 0
[ "$SLURM_LONGRUN_RESTART_COUNT" -ge 1 ] && exit 0
trap 'exit 143' TERM
while :; do sleep 0.2; done
"""
    array, _, _ = submit_array(tmp_path, script, "--array=0-1", "-p", "main")
    wait_for(
        lambda: array.status(1)["state"] == "COMPLETED" and array.status(0)["links"],
        timeout=120,
        what="element 1 to complete and element 0 to run",
    )
    victim = array.links(0)[0]["job_id"]
    cluster.preempt(victim)
    view = array.wait_end()
    assert view["state"] == "COMPLETED", view
    first, second = array.links(0)
    assert first["preempted"] and first["job_id"] == victim
    assert second["state"] == "COMPLETED"
    assert len(array.links(1)) == 1
    assert_no_overlap_within_elements(array)


def test_scancel_of_one_task_ends_that_element_and_longrun_cancel_ends_all(
    cluster: Cluster, tmp_path: Path
) -> None:
    # Elements 0 and 1 run and wait for go_N; element 2 waits for the throttle.
    script = CONTINUE_ONCE.replace("${WAIT:-}", "wait")
    array, _, _ = submit_array(tmp_path, script, "--array=0-2%2", "-p", "multi")
    started(tmp_path, array, (0, 1))
    cluster.cancel(f"{array.array_job}_1")  # a running task
    cluster.cancel(f"{array.array_job}_2")  # a task still waiting for the throttle
    wait_for(lambda: array.status(1)["state"] == "CANCELLED", timeout=120, what="element 1 to end")
    (tmp_path / "go_0").touch()
    view = array.wait_end()
    states = {e["element"]: e["state"] for e in view["elements"]}
    assert states == {0: "COMPLETED", 1: "CANCELLED", 2: "CANCELLED"}, view
    assert view["state"] == "CANCELLED"
    assert array.links(1)[0]["state"] == "CANCELLED"
    out = (tmp_path / f"out_{array.array_job}_1.txt").read_text()
    assert [line for line in out.splitlines() if line.startswith("link=")] == ["link=0 task=1"]
    assert array.links(2) == []

    # A second array, cancelled as a whole while two elements run and one waits.
    other, _, _ = submit_array(tmp_path / "all", script, "--array=0-2%2", "-p", "multi")
    wait_for(lambda: all(other.status(i)["links"] for i in (0, 1)), timeout=120, what="running")
    said = other.longrun("cancel", other.chain_id)
    assert f"Chain {other.chain_id} CANCELLED" in said
    view = other.wait_end()
    assert view["elements_by_state"] == {"CANCELLED": 3}, view

    def queued() -> str:
        """The array's tasks slurmctld still holds (cancelled tasks stay COMPLETING a moment)."""
        return slurm.run(["squeue", "-h", "-r", "-j", other.array_job, "-o", "%i %T"]).stdout

    wait_for(lambda: queued().strip() == "", timeout=60, what="the cancelled tasks to leave squeue")
    for element in (0, 1):
        assert len(other.links(element)) == 1

    # A third, ended by scancel of the whole array job: every element ends, none runs again.
    third, _, _ = submit_array(tmp_path / "scancel", script, "--array=0-2%2", "-p", "multi")
    started(tmp_path / "scancel", third, (0, 1))
    cluster.cancel(third.array_job)
    view = third.wait_end()
    assert view["elements_by_state"] == {"CANCELLED": 3}, view
    for element in (0, 1):
        out = (tmp_path / "scancel" / f"out_{third.array_job}_{element}.txt").read_text()
        assert [line for line in out.splitlines() if line.startswith("link=")] == [
            f"link=0 task={element}"
        ]


def test_a_throttle_limits_the_elements_first_links(cluster: Cluster, tmp_path: Path) -> None:
    """%2 on 6 elements: Slurm runs 2 first links at once, never more (the promise: a later
    link is a plain job that the throttle does not count, see the README). Each first link
    waits until an even number of them have started (at most 60 s): two that run together go on
    together, so the accounting shows 2 at once unless Slurm ran fewer."""
    script = """#!/bin/bash
#SBATCH -o out_%A_%a.txt
if [ "$SLURM_LONGRUN_RESTART_COUNT" = 0 ]; then
    touch "started_$SLURM_ARRAY_TASK_ID"
    for _ in $(seq 600); do
        started=(started_*)
        [ $((${#started[@]} % 2)) = 0 ] && break
        sleep 0.1
    done
    sleep 2
    exit "$SLURM_LONGRUN_CONTINUE_CODE"
fi
"""
    array, output, _ = submit_array(tmp_path, script, "--array=0-5%2", "-p", "multi")
    assert "throttle %2: Slurm starts at most 2 elements' first links at once" in output
    view = array.wait_end()
    assert view["elements_by_state"] == {"COMPLETED": 6}, view
    records = accounting(array, first_links=6)
    first_links = [(r["start"], r["end"]) for r in records if "_" in r["job"]]
    assert len(first_links) == 6
    assert most_at_once(first_links) == 2
    everything = [(r["start"], r["end"]) for r in records]
    print(f"elements running at once, later links included: {most_at_once(everything)}")
    assert_no_overlap_within_elements(array)


@pytest.mark.parametrize(
    ("spec", "elements", "count", "low", "high", "step"),
    # SLURM_ARRAY_TASK_STEP of "1,4-8:4" is 4 (the step written last) on 22.05 and 24.11 alike.
    # Brackets and a throttle, as slurmctld takes them (issue 23).
    [("7", [7], 1, 7, 7, 1), ("1,4-8:4", [1, 4, 8], 3, 1, 8, 4), ("[2-6:4]%1", [2, 6], 2, 2, 6, 4)],
)
def test_one_index_and_a_list_with_a_step(
    cluster: Cluster,
    tmp_path: Path,
    spec: str,
    elements: list[int],
    count: int,
    low: int,
    high: int,
    step: int,
) -> None:
    script = """#!/bin/bash
#SBATCH -o out_%a.txt
echo "$SLURM_LONGRUN_RESTART_COUNT $SLURM_ARRAY_TASK_ID $SLURM_ARRAY_TASK_COUNT \
$SLURM_ARRAY_TASK_MIN $SLURM_ARRAY_TASK_MAX $SLURM_ARRAY_TASK_STEP"
[ "$SLURM_LONGRUN_RESTART_COUNT" -ge 1 ] || exit "$SLURM_LONGRUN_CONTINUE_CODE"
"""
    array, _, _ = submit_array(tmp_path, script, f"--array={spec}", "-p", "multi")
    view = array.wait_end()
    assert [e["element"] for e in view["elements"]] == elements
    assert view["elements_by_state"] == {"COMPLETED": len(elements)}
    for element in elements:
        out = (tmp_path / f"out_{element}.txt").read_text().splitlines()
        lines = [line for line in out if not line.startswith("longrun:")]
        # Link 0 shows what Slurm set; link 1, a plain job, what longrun set to the same.
        assert lines == [f"{n} {element} {count} {low} {high} {step}" for n in range(2)], lines
