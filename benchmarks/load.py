"""A load run: hundreds of chains at once, with a preemption wave and a slurmctld restart in the
middle, every chain checked from its event logs and Slurm's accounting.

    sudo .venv/bin/python benchmarks/load.py [--chains 200] [--steps 5] [--timeouts 10] [--out DIR]

As root, with the local cluster up and nothing else running on it. The chains run as a user of
their own (lrbench-load), so that `sdiag` counts their RPCs apart. Each chain does STEPS steps,
one per link: a short link records its step and asks for a new allocation with the continue exit
code; in the first TIMEOUTS chains, links 1 and 3 first sleep into their one-minute time limit.
When 40% of all steps are done, a job that needs the whole node preempts every running link;
at 60%, slurmctld is stopped and started again. At the end every chain must have ended
COMPLETED, each step done exactly once and in order by a link of its own, every link must have
done a step or been stopped by Slurm, and `longrun verify` must pass on it. Writes load.json and
load.md to --out. tests/e2e/test_load.py runs a small version with the same functions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from longrun import states
from longrun.chain_store import ChainFolder
from longrun.chain_view import build_view
from longrun.verify import verify

WORKLOAD = """#!/bin/bash
# One step per link: record it, then ask for a new allocation until the last step. With
# "timeout", links 1 and 3 first sleep into their one-minute time limit (no step). Idempotent
# as a checkpointing job is: a link that finds every step done (its predecessor did the last
# one, then was preempted in its GraceTime and so continued) does nothing.
done_steps=$(wc -l <steps 2>/dev/null || echo 0)
[ "$done_steps" -ge STEPS ] && exit 0
k=$SLURM_LONGRUN_RESTART_COUNT
if [ "${1:-}" = timeout ] && { [ "$k" = 0 ] || [ "$k" = 2 ]; }; then sleep 300; fi
sleep 3
echo "$((done_steps + 1)) $SLURM_JOB_ID" >>steps
[ $((done_steps + 1)) -ge STEPS ] && exit 0
exit "$SLURM_LONGRUN_CONTINUE_CODE"
"""

# How a link ended when Slurm stopped it (its step may be done again by the next link).
INTERRUPTED = (states.KIND_TIME_LIMIT, states.KIND_PREEMPTED, states.KIND_NODE_FAILURE)


@dataclass
class ChainCheck:
    workdir: str
    chain: str
    state: str
    steps: list[str]  # the steps in the order they were recorded
    step_jobs: list[str]  # the job that recorded each step
    links: list[str]  # the jobs of the links that started
    interrupted: list[str]  # of them, links Slurm stopped (time limit, preemption, node failure)
    problems: list[str] = field(default_factory=list)  # what `longrun verify` found

    def ok(self, steps: int) -> bool:
        """COMPLETED; each step done once, in order, by a link of its own; and every link
        either did a step or was stopped by Slurm (or came after a link that did the last step
        and was then stopped); `longrun verify` found nothing wrong."""
        last = self.step_jobs[-1] if self.step_jobs else None
        if last in self.links and last in self.interrupted:
            considered = self.links[: self.links.index(last) + 1]
        else:
            considered = self.links
        idle = set(considered) - set(self.step_jobs) - set(self.interrupted)
        return (
            self.state == "COMPLETED"
            and self.steps == [str(n) for n in range(1, steps + 1)]
            and len(set(self.step_jobs)) == steps
            and set(self.step_jobs) <= set(self.links)
            and not idle
            and not self.problems
        )


def write_workdirs(
    base: Path, chains: int, steps: int, owner: tuple[int, int] | None
) -> list[Path]:
    """One work folder per chain, with the workload script, owned by the chains' user."""
    script = WORKLOAD.replace("STEPS", str(steps))
    workdirs = []
    for number in range(chains):
        workdir = base / f"c{number:03d}"
        workdir.mkdir(parents=True)
        (workdir / "work.sh").write_text(script)
        for path in (workdir, workdir / "work.sh") if owner else ():
            os.chown(path, *owner)
        workdirs.append(workdir)
    return workdirs


def submit_chains(
    workdirs: Sequence[Path], state_dir: Path, timeouts: int, partition: str,
    wrap: Callable[[list[str]], list[str]] = list,
) -> list[str]:  # fmt: skip
    """Every chain submitted with --no-watch, eight at a time; their chain ids, in order."""

    def submit(index: int) -> str:
        timeout = index < timeouts
        command = wrap([
            "sbatch_longrun", "--no-watch", "--state-dir", str(state_dir), "-p", partition,
            f"--time={1 if timeout else 5}", "-J", f"load{index:03d}", "-o", "out-%j.log",
            "work.sh", "timeout" if timeout else "short",
        ])  # fmt: skip
        result = subprocess.run(command, cwd=workdirs[index], capture_output=True, text=True)
        if result.returncode != 0:  # what longrun said, not only its exit status
            raise RuntimeError(f"{shlex.join(command)} exit {result.returncode}:\n{result.stderr}")
        job = result.stdout.split()[-1]
        return (state_dir / "jobs" / job).read_text().strip()

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(submit, range(len(workdirs))))


def steps_done(workdirs: Sequence[Path]) -> int:
    total = 0
    for workdir in workdirs:
        with contextlib.suppress(OSError):
            total += len((workdir / "steps").read_text().splitlines())
    return total


def running_link_jobs() -> list[str]:
    """The job ids of the load run's links slurmctld shows running (named load###)."""
    out = subprocess.run(["squeue", "-h", "-t", "R", "-o", "%i %j"], capture_output=True,
                         text=True, check=False).stdout  # fmt: skip
    pairs = (line.split() for line in out.splitlines())
    return [pair[0] for pair in pairs if len(pair) == 2 and pair[1].startswith("load")]


def running_links() -> int:
    """How many links of the load run slurmctld shows running."""
    return len(running_link_jobs())


UNFINISHED = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING"}


def _squeue(job: str, *output: str) -> str:
    """One job's field, while slurmctld still knows the job (else empty)."""
    command = ["squeue", "-h", "-t", "all", "-j", job, *output]
    return subprocess.run(command, capture_output=True, text=True, check=False).stdout.strip()


def preempt_running_links(cpus: str, timeout: float = 120) -> list[str]:
    """A job that needs the whole node, in the partition that preempts `main`; once it has run,
    the links that were running when it was submitted and that slurmctld shows preempted
    (PreemptTime). Empty when they had ended by themselves first: then nothing was preempted."""
    victims = running_link_jobs()
    out = subprocess.run(
        ["sbatch", "--parsable", "-p", "high", "-c", cpus, "-o", "/dev/null",
         "-J", "load-preemptor", "--wrap", "true"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    preemptor = out.strip().split(";")[0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _squeue(preemptor, "-o", "%T") not in UNFINISHED:
            break
        time.sleep(0.5)
    shown = {job: _squeue(job, "-O", "PreemptTime") for job in victims}
    return [job for job, when in shown.items() if when and when not in {"N/A", "None", "Unknown"}]


def ready_for(fraction: float, workdirs: Sequence[Path], steps: int) -> Callable[[], bool]:
    """A fault is due: this share of all steps is done and links are running, half the chains'
    or 8, whichever is fewer (between links, a preemption would hit nothing)."""
    total, running = len(workdirs) * steps, max(1, min(len(workdirs) // 2, 8))
    return lambda: steps_done(workdirs) >= fraction * total and running_links() >= running


def all_ended(state_dir: Path, chains: Sequence[str]) -> bool:
    return all((state_dir / "chains" / chain / "ended").exists() for chain in chains)


def check_chain(workdir: Path, state_dir: Path, chain: str) -> ChainCheck:
    """What the load run promises of one chain, from its files and (through `longrun verify`)
    Slurm's accounting."""
    folder = ChainFolder(state_dir / "chains" / chain)
    try:
        lines = [line.split() for line in (workdir / "steps").read_text().splitlines()]
    except OSError:
        lines = []
    view = build_view(folder.read_meta(), folder.read_events(), folder.ended())
    started = [link for link in view.links if link.start_epoch is not None]
    return ChainCheck(
        workdir=str(workdir), chain=chain, state=folder.ended() or "not ended",
        steps=[line[0] for line in lines], step_jobs=[line[-1] for line in lines],
        links=[link.job_id for link in started],
        interrupted=[
            link.job_id for link in started
            if states.link_kind(link.state, link.verdict, link.preempted) in INTERRUPTED
        ],
        problems=[problem for report in verify(folder) for problem in report.problems],
    )  # fmt: skip


def check_all(
    workdirs: Sequence[Path], state_dir: Path, chains: Sequence[str], steps: int,
    timeout: float = 120,
) -> list[ChainCheck]:  # fmt: skip
    """Every chain checked; chains that fail are checked again until `timeout` (slurmdbd
    records the last ends a moment after they happen)."""
    checks = {c: check_chain(w, state_dir, c) for w, c in zip(workdirs, chains)}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(c.ok(steps) for c in checks.values()):
        time.sleep(5)
        for workdir, chain in zip(workdirs, chains):
            if not checks[chain].ok(steps):
                checks[chain] = check_chain(workdir, state_dir, chain)
    return [checks[chain] for chain in chains]


# --- the benchmark (as root) ----------------------------------------------------------------


def main() -> None:
    import benchlib as bench

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chains", type=int, default=200)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--timeouts", type=int, default=10)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    bench.need_root()
    bench.setup_venvs(old_tool=False)
    user = "lrbench-load"
    account = bench.setup_user(user)
    base = bench.BENCH / "load" / time.strftime("%Y%m%d-%H%M%S")
    base.mkdir(parents=True)
    os.chown(base, account.pw_uid, account.pw_gid)
    state_dir = base / "state"
    workdirs = write_workdirs(base, args.chains, args.steps, (account.pw_uid, account.pw_gid))
    sbatch_longrun = str(bench.BENCH / "longrun" / "bin" / "sbatch_longrun")

    def wrap(command: list[str]) -> list[str]:
        return bench.as_user(user, [sbatch_longrun, *command[1:]])

    bench.run(["sdiag", "-r"])
    t0 = time.time()
    chains = submit_chains(workdirs, state_dir, args.timeouts, "main", wrap)
    submitted = time.time() - t0
    print(f"load: {len(chains)} chains submitted in {submitted:.1f} s", flush=True)
    bench.wait_for("40% of the steps", ready_for(0.4, workdirs, args.steps), timeout=3600)
    cpus = bench.run(["sinfo", "-h", "-p", "high", "-N", "-o", "%c"]).split()[0]
    wave = time.time() - t0
    preempted = preempt_running_links(cpus)
    print(f"load: preemption wave at {wave:.0f} s preempted {len(preempted)} links", flush=True)
    bench.wait_for("60% of the steps", ready_for(0.6, workdirs, args.steps), timeout=3600)
    local_slurm = str(Path(__file__).resolve().parent.parent / "example" / "local-slurm.sh")
    rpcs = bench.rpcs_by_user().get(user, 0)  # a restart of slurmctld starts its counters anew
    for action in (["stop", "slurmctld"], ["up"]):
        subprocess.run(["bash", local_slurm, *action], check=True, capture_output=True)
    print(f"load: slurmctld restarted at {time.time() - t0:.0f} s", flush=True)
    finished = lambda: all_ended(state_dir, chains) and not bench.queued(user)  # noqa: E731
    bench.wait_for("every chain to end", finished, timeout=3600, every=2)
    elapsed = time.time() - t0
    rpcs += bench.rpcs_by_user().get(user, 0)
    checks = check_all(workdirs, state_dir, chains, args.steps)
    links = sum(len(c.links) for c in checks)
    bad = [c for c in checks if not c.ok(args.steps)]
    summary = {
        "header": bench.machine_header(
            f"benchmarks/load.py --chains {args.chains} --steps {args.steps} "
            f"--timeouts {args.timeouts}"
        ),
        "chains": len(chains), "submitted_s": round(submitted, 1), "elapsed_s": round(elapsed),
        "links": links, "interrupted": sum(len(c.interrupted) for c in checks),
        "completed": sum(1 for c in checks if c.state == "COMPLETED"),
        "chains_ok": len(checks) - len(bad),
        "rpcs": rpcs, "rpcs_per_link": round(rpcs / links, 2) if links else None,
        "checks": [asdict(c) for c in checks],
    }  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "load.json").write_text(json.dumps(summary, indent=1) + "\n")
    table = (
        f"{summary['header']}\n\n| chains | links | interrupted | ended COMPLETED "
        f"| all checks pass | submitted in (s) | run (s) | RPCs (submissions included) "
        f"| RPCs per link |\n"
        f"|---|---|---|---|---|---|---|---|---|\n"
        f"| {len(chains)} | {links} | {summary['interrupted']} | {summary['completed']} "
        f"| {summary['chains_ok']} | {summary['submitted_s']} | {summary['elapsed_s']} "
        f"| {rpcs} | {summary['rpcs_per_link']} |\n"
    )
    (out / "load.md").write_text(table)
    print(table)
    for check in bad:
        print(f"load: chain {check.chain} failed its checks: {check}")


if __name__ == "__main__":
    main()
