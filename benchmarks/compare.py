"""longrun side by side with the earlier slurm-longrun 0.1.4, on the local cluster.

    sudo .venv/bin/python benchmarks/compare.py [--scenarios timeout,preempt,...] [--out DIR]
        [--batch-sched-delay SECONDS]

As root, with the local cluster up (bash example/local-slurm.sh up) and nothing else running on
it. It installs slurm-longrun==0.1.4 (from PyPI) and this checkout into virtual environments of
their own, creates one Unix user per tool (slurmctld's RPC counters, `sdiag`, count by user),
and runs them at the same time on the same workload, one scenario after another:

    slurm-longrun     the earlier tool as its users run it: its foreground monitor
    longrun           sbatch_longrun --no-watch (nothing runs on the login node)
    longrun+watch     sbatch_longrun with its foreground watcher
    sbatch+afterany   Slurm alone, for comparison: the job and one successor submitted with
                      --dependency=afterany on it. Its handover gap is the least any chain
                      of dependent jobs can have on this cluster (slurmctld starts a job that
                      waited for another at its next scheduling pass).

The workload does 150 steps of one second and writes a checkpoint after each; a new link starts
from the checkpoint. Faults are made by root: a job in the high-priority partition that needs
the whole node (preemption; the partition has GraceTime), `scontrol update state=down` on the
node (with --no-requeue), `scancel` of the running job. Times come from sacct (whole seconds)
and from the links' own events (sub-second). Writes compare.json and compare.md to --out and
prints the table. It takes about 30 minutes: the earlier tool looks at a job again only
after the time left of its limit (at most 300 s), so it notices a fault that late.
"""

from __future__ import annotations

import argparse
import json
import pwd
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchlib import (
    BENCH,
    ROOT,
    as_user,
    batch_sched_delay,
    jobs_of,
    machine_header,
    need_root,
    queued,
    rpcs_by_user,
    run,
    setup_user,
    setup_venvs,
    slurm_epoch,
    wait_for,
)  # fmt: skip

WORK_STEPS = 150
FAULT_AT_STEP = 30
SCENARIO_TIMEOUT = 900

WORKLOAD = """#!/bin/bash
# 150 one-second steps, a checkpoint after each; a new job goes on from the checkpoint.
# On SIGTERM: "exit" leaves at once (exit 143) from a step of its own (srun), as programs
# started with srun do: Slurm then records a preempted job FAILED; "ignore" keeps working
# until killed (Slurm records PREEMPTED).
on_term=${1:-exit}
if [ "$on_term" = exit ] && [ -z "${BENCH_IN_STEP:-}" ]; then
    BENCH_IN_STEP=1 exec srun --ntasks=1 bash "$0" exit
fi
[ "$on_term" = exit ] && trap 'exit 143' TERM || trap '' TERM
n=$(cat checkpoint 2>/dev/null || echo 0)
echo "job $SLURM_JOB_ID starts at step $n"
while [ "$n" -lt STEPS ]; do
    sleep 1
    n=$((n + 1))
    echo "$n" >checkpoint.tmp && mv checkpoint.tmp checkpoint
done
[ -e done ] || date +%s.%N >done
echo "job $SLURM_JOB_ID: work done"
""".replace("STEPS", str(WORK_STEPS))


@dataclass(frozen=True)
class Scenario:
    name: str
    describe: str
    time_limit: str
    on_term: str  # what the workload does on SIGTERM: "exit" or "ignore"
    fault: str = ""  # "preempt", "node_fail", "scancel" or "" (time limits only)
    options: tuple[str, ...] = ()


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("timeout", "150 s of work under --time=1", "1", "exit"),
        Scenario(
            "preempt", "preempted 30 s in; the work exits on SIGTERM (Slurm 22.05 records FAILED, "
            "24.11 PREEMPTED)", "3", "exit", "preempt",
        ),
        Scenario(
            "preempt-graced", "preempted 30 s in; the work ignores SIGTERM, Slurm records "
            "PREEMPTED", "3", "ignore", "preempt",
        ),
        Scenario(
            "node_fail", "the node goes down 30 s in (--no-requeue: NODE_FAIL)", "3", "exit",
            "node_fail", ("--no-requeue",),
        ),
        Scenario("scancel", "scancel of the running job 30 s in: the run must stop", "3", "exit",
                 "scancel"),
    )
}  # fmt: skip


@dataclass(frozen=True)
class Tool:
    name: str
    user: str
    venv: str
    options: tuple[str, ...]

    @property
    def command(self) -> str:
        if self.venv == "plain":
            return str(PLAIN_SUBMIT)
        return str(BENCH / self.venv / "bin" / "sbatch_longrun")


TOOLS = (
    Tool("slurm-longrun", "lrbench-old", "slurm-longrun", ()),
    Tool("longrun", "lrbench-new", "longrun", ("--no-watch",)),
    Tool("longrun+watch", "lrbench-watch", "longrun", ()),
    Tool("sbatch+afterany", "lrbench-plain", "plain", ()),
)
PLAIN_SUBMIT = BENCH / "plain-afterany.sh"
PLAIN_SCRIPT = """#!/bin/bash
# Slurm alone: the job, and one successor that waits for it to end in any state.
set -e
first=$(sbatch --parsable "$@")
sbatch --dependency="afterany:${first%%;*}" "$@"
"""


@dataclass
class Result:
    scenario: str
    tool: str
    links: int
    links_after_done: int
    work_done: bool
    to_done_s: float | None
    to_idle_s: float | None
    gaps: list[tuple[str, float]]  # (how the job before ended, its end to the next start)
    # the same gaps, counted from when the node was free again (the preemptor ended, the node
    # came back) where that was later than the job's end: what the tool itself took
    gaps_from_free: list[float]
    outcome: str
    rpcs: int
    submit_rpcs: int
    rpcs_per_link: float | None  # (rpcs - submit_rpcs) / links: the tool and the workload
    overhead_start_s: list[float] = field(default_factory=list)
    overhead_end_s: list[float] = field(default_factory=list)
    prologue_s: list[float] = field(default_factory=list)


# --- one scenario -----------------------------------------------------------------------------


def start_tool(tool: Tool, scenario: Scenario, workdir: Path, log: Path) -> subprocess.Popen:
    """The tool, run as its user from its work folder, as that user would type it."""
    account = pwd.getpwnam(tool.user)
    (workdir / "work.sh").write_text(WORKLOAD)
    shutil.chown(workdir, account.pw_uid, account.pw_gid)
    command = [
        tool.command, *tool.options, "-p", "main", f"--time={scenario.time_limit}",
        *scenario.options, "-J", f"bench-{scenario.name}", "-o", "out.log",
        "work.sh", scenario.on_term,
    ]  # fmt: skip
    if tool.venv == "longrun":
        command[1:1] = ["--state-dir", str(workdir / "state")]
    return subprocess.Popen(
        as_user(tool.user, command), cwd=workdir, stdout=log.open("w"), stderr=subprocess.STDOUT
    )


def step_of(workdir: Path) -> int:
    try:
        return int((workdir / "checkpoint").read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def make_fault(scenario: Scenario, workdirs: dict[str, Path]) -> float | None:
    """At step 30 of every tool's work, the scenario's fault, made by root. Returns when the
    node was free again (the preemptor ended, the node was back), or None."""
    if not scenario.fault:
        return None
    users = [tool.user for tool in TOOLS]
    at_step = lambda: all(step_of(d) >= FAULT_AT_STEP for d in workdirs.values())  # noqa: E731
    wait_for("every workload at step 30", at_step, timeout=300)
    if scenario.fault == "preempt":
        cpus = run(["sinfo", "-h", "-p", "high", "-N", "-o", "%c"]).split()[0]
        preemptor = run(["sbatch", "--parsable", "-p", "high", "-c", cpus, "-o", "/dev/null",
                         "-J", "bench-preemptor", "--wrap", "true"]).strip()  # fmt: skip

        def preemptor_end() -> float | None:
            out = run(["sacct", "-X", "-n", "-P", "-j", preemptor, "-o", "State,End"]).split("|")
            return slurm_epoch(out[1].strip()) if out[0] == "COMPLETED" else None

        wait_for("the preemptor to end", preemptor_end, timeout=300, every=1)
        return preemptor_end()
    elif scenario.fault == "node_fail":
        node = run(["sinfo", "-h", "-p", "main", "-N", "-o", "%N"]).split()[0]
        victims = [job for user in users for job in queued(user, "R")]
        run(["scontrol", "update", f"nodename={node}", "state=down", "reason=benchmark"])
        wait_for("the jobs on the node to end", lambda: not any(
            j in queued(u, "R") for u in users for j in victims), timeout=120)  # fmt: skip
        # ReturnToService=2 may have brought it back already: then there is nothing to resume.
        subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"],
                       capture_output=True, check=False)  # fmt: skip
        usable = ("idle", "mixed", "allocated")
        wait_for("the node to take jobs", lambda: run(
            ["sinfo", "-h", "-n", node, "-o", "%T"]).strip().rstrip("*") in usable,
            timeout=120)  # fmt: skip
        return time.time()
    if scenario.fault == "scancel":
        for user in users:
            for job in queued(user, "R"):
                run(["scancel", job])
    return None


def link_times(state_dir: Path) -> dict[str, dict[str, float]]:
    """Per job of a longrun chain: when its link started, its body started and ended, and its
    last event (sub-second, from the links' own event logs)."""
    found: dict[str, dict[str, float]] = {}
    for events in state_dir.glob("chains/*/links/*/events.jsonl"):
        times: dict[str, float] = {}
        for line in events.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            t = float(event.get("t") or event.get("epoch") or 0)
            times.setdefault(event["event"], t)
            times["last"] = t
        found[events.parent.name] = times
    return found


def chain_state(state_dir: Path) -> str:
    ended = list(state_dir.glob("chains/*/ended"))
    return ended[0].read_text().strip() if ended else "not ended"


def measure(
    scenario: Scenario, tool: Tool, workdir: Path, t0: float, rpcs: dict[str, int],
    submit_rpcs: int, free_at: float | None,
) -> Result:  # fmt: skip
    jobs = jobs_of(tool.user, t0)
    ran = [j for j in jobs if j.start is not None and j.end is not None]
    done_file = workdir / "done"
    done = float(done_file.read_text()) if done_file.exists() else None
    ends = [j.end for j in jobs if j.end is not None]
    gaps = [(a.state, b.start - a.end) for a, b in zip(ran, ran[1:])]
    gaps_from_free = [
        b.start - max(a.end, free_at if free_at and b.start >= free_at else a.end)
        for a, b in zip(ran, ran[1:])
    ]
    if tool.venv == "longrun":
        outcome = chain_state(workdir / "state")
    else:
        outcome = f"stopped after {ran[-1].state}" if ran else "nothing ran"
    result = Result(
        scenario=scenario.name, tool=tool.name, links=len(ran),
        links_after_done=sum(1 for j in ran if done is not None and j.start > done),
        work_done=done is not None, to_done_s=round(done - t0, 1) if done else None,
        to_idle_s=round(max(ends) - t0, 1) if ends else None, gaps=gaps,
        gaps_from_free=gaps_from_free, outcome=outcome,
        rpcs=rpcs.get(tool.user, 0), submit_rpcs=submit_rpcs,
        rpcs_per_link=round((rpcs.get(tool.user, 0) - submit_rpcs) / len(ran), 1) if ran else None,

    )  # fmt: skip
    if tool.venv == "longrun":
        times = link_times(workdir / "state")
        for job in ran:
            link = times.get(job.job, {})
            if "body_started" in link:
                result.overhead_start_s.append(round(link["body_started"] - job.start, 2))
                result.prologue_s.append(round(link["body_started"] - link["link_started"], 3))
            if "body_exited" in link:
                # sacct's End is cut to the second: the job ended before End + 1 (markdown).
                result.overhead_end_s.append(round(job.end - link["body_exited"], 2))
    return result


def workload_rpcs(user: str, workdir: Path) -> int:
    """What one srun step costs slurmctld (the workload runs under srun in most scenarios):
    a job with `srun true` less a job with `true`, both submitted by `user` alone."""
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.chown(workdir, user, user)
    counts = []
    for command in ("true", "srun --ntasks=1 true"):
        run(["sdiag", "-r"])
        job = run(as_user(user, ["sbatch", "--parsable", "-p", "main", "-o", "/dev/null",
                                 "--wrap", command]), cwd=workdir).strip()  # fmt: skip
        wait_for("the probe job", lambda job=job: not run(["squeue", "-h", "-j", job]).strip(),
                 timeout=120, every=0.5)  # fmt: skip
        time.sleep(2)
        counts.append(rpcs_by_user().get(user, 0))
    return counts[1] - counts[0]


def submission_rpcs(tool: Tool, workdir: Path) -> int:
    """RPCs of one submission alone (held, then cancelled): what the login node spends on it."""
    workdir.mkdir(parents=True, exist_ok=True)
    run(["sdiag", "-r"])
    scenario = Scenario("held", "", "1", "exit", options=("--hold",))
    options = ("--no-watch",) if tool.venv == "longrun" else tool.options
    process = start_tool(Tool(tool.name, tool.user, tool.venv, options), scenario, workdir,
                         workdir / "tool.log")  # fmt: skip
    if tool.venv == "slurm-longrun":
        wait_for("the held job", lambda: queued(tool.user), timeout=60)
        count = rpcs_by_user().get(tool.user, 0)
        process.kill()
    else:
        process.wait(timeout=60)
        count = rpcs_by_user().get(tool.user, 0)
    for job in queued(tool.user):
        run(["scancel", job])
    process.wait(timeout=60)
    return count


def run_scenario(scenario: Scenario, base: Path, submit_rpcs: dict[str, int]) -> list[Result]:
    print(f"benchmark: {scenario.name}: {scenario.describe}", flush=True)
    workdirs = {tool.name: base / scenario.name / tool.name for tool in TOOLS}
    for path in workdirs.values():
        path.mkdir(parents=True)
    run(["sdiag", "-r"])
    t0 = time.time()
    processes = {
        tool.name: start_tool(tool, scenario, workdirs[tool.name], workdirs[tool.name] / "tool.log")
        for tool in TOOLS
    }
    free_at = make_fault(scenario, workdirs)

    def finished() -> bool:
        if any(p.poll() is None for name, p in processes.items() if name != "longrun"):
            return False
        if chain_state(workdirs["longrun"] / "state") == "not ended":
            return False
        return not any(queued(tool.user) for tool in TOOLS)

    wait_for("every tool to finish", finished, timeout=SCENARIO_TIMEOUT, every=1.0)
    rpcs = rpcs_by_user()
    time.sleep(3)  # slurmdbd records the last ends a moment later
    return [
        measure(scenario, tool, workdirs[tool.name], t0, rpcs, submit_rpcs[tool.name], free_at)
        for tool in TOOLS
    ]


# --- the table ------------------------------------------------------------------------------


def seconds(values: list[float]) -> str:
    return ", ".join(f"{v:g}" for v in values) if values else "-"


def markdown(results: list[Result], header: str, srun_rpcs: int) -> str:
    """The table. RPCs per link are shown twice: all of the user's (tool and workload), and
    the tool's alone, less the workload's srun step (srun_rpcs per link where the work runs
    under srun). sacct's End is cut to the second, so a job ended before End + 1: "body end to
    job end" is that upper bound."""
    lines = [
        header, "",
        "| scenario | tool | links | after done | work done | to done (s) | to idle (s) "
        "| handover gaps (s) | outcome | RPCs (submit) | RPCs/link | RPCs/link, tool only "
        "| job start→body (s) | body end→job end, at most (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in results:
        gaps = ", ".join(
            f"{g:g} after {s}"
            + (f" ({round(f, 1):g} once the node was free)" if round(f, 1) != g else "")
            for (s, g), f in zip(r.gaps, r.gaps_from_free)
        ) or "-"  # fmt: skip
        step = srun_rpcs if SCENARIOS[r.scenario].on_term == "exit" else 0
        own = (r.rpcs - r.submit_rpcs) / r.links - step if r.links else None
        lines.append(
            f"| {r.scenario} | {r.tool} | {r.links} | {r.links_after_done} | "
            f"{'yes' if r.work_done else 'no'} | {r.to_done_s if r.to_done_s else '-'} | "
            f"{r.to_idle_s if r.to_idle_s else '-'} | {gaps} | {r.outcome} | "
            f"{r.rpcs} ({r.submit_rpcs}) | {r.rpcs_per_link if r.rpcs_per_link else '-'} | "
            f"{'-' if own is None else round(own, 1)} | {seconds(r.overhead_start_s)} | "
            f"{seconds([round(v + 1, 2) for v in r.overhead_end_s])} |"
        )
    prologues = [p for r in results for p in r.prologue_s]
    if prologues:
        lines += ["", f"longrun's prologue (link start to body start, from its own events): "
                  f"median {sorted(prologues)[len(prologues) // 2]:g} s, "
                  f"max {max(prologues):g} s over {len(prologues)} links."]  # fmt: skip
    if any(r.tool == "sbatch+afterany" for r in results):
        lines += ["", "sbatch+afterany is Slurm alone: the job and one successor submitted with "
                  "--dependency=afterany on it. Its gaps are the least any chain of dependent jobs "
                  "has on this cluster: slurmctld starts a job whose dependency was just met (or "
                  "that waited for the node) at its next scheduling pass, which comes at most "
                  "batch_sched_delay (3 s by default) after the one before."]  # fmt: skip
    lines += ["", f"One srun step of the workload costs {srun_rpcs} RPCs (a job with `srun true` "
              "less one with `true`, measured at the start of the run)."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--table-from", help="only print the table of an earlier run's JSON")
    parser.add_argument("--srun-rpcs", type=int, help="with --table-from: if the JSON lacks it")
    parser.add_argument("--batch-sched-delay", type=int, metavar="SECONDS",
                        help="run with SchedulerParameters=batch_sched_delay=SECONDS (slurm.conf "
                        "is changed for the run and restored)")  # fmt: skip
    args = parser.parse_args()
    if args.table_from:
        earlier = json.loads(Path(args.table_from).read_text())
        rows = [Result(**r) for r in earlier["results"]]
        print(markdown(rows, earlier["header"], earlier.get("srun_rpcs", args.srun_rpcs)), end="")
        return
    need_root()
    chosen = [SCENARIOS[name] for name in args.scenarios.split(",")]
    print("benchmark: installing slurm-longrun 0.1.4 and this checkout", flush=True)
    setup_venvs()
    for tool in TOOLS:
        setup_user(tool.user)
    PLAIN_SUBMIT.write_text(PLAIN_SCRIPT)
    PLAIN_SUBMIT.chmod(0o755)
    with batch_sched_delay(args.batch_sched_delay):
        run_scenarios(chosen, args)


def run_scenarios(chosen: list[Scenario], args: argparse.Namespace) -> None:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = BENCH / "runs" / stamp
    base.mkdir(parents=True)
    base.chmod(0o755)
    submit_rpcs = {tool.name: submission_rpcs(tool, base / "submit" / tool.name) for tool in TOOLS}
    srun_rpcs = workload_rpcs(TOOLS[0].user, base / "probe")
    delay = f" --batch-sched-delay {args.batch_sched_delay}" if args.batch_sched_delay else ""
    header = machine_header(f"benchmarks/compare.py --scenarios {args.scenarios}{delay}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    for scenario in chosen:  # the files are written after each scenario: a crash keeps them
        results += run_scenario(scenario, base, submit_rpcs)
        saved = {"header": header, "srun_rpcs": srun_rpcs, "results": [asdict(r) for r in results]}
        (out / "compare.json").write_text(json.dumps(saved, indent=1) + "\n")
        (out / "compare.md").write_text(markdown(results, header, srun_rpcs))
    print(markdown(results, header, srun_rpcs))


if __name__ == "__main__":
    main()
