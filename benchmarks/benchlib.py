"""What the cluster benchmarks share: Slurm's commands as root, the benchmark's users and
virtual environments, slurmctld's RPC counts by user."""

from __future__ import annotations

import contextlib
import os
import platform
import pwd
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path("/var/lib/longrun-bench")


def need_root() -> None:
    if os.geteuid() != 0:
        sys.exit("benchmark: run it as root (it creates users and makes faults)")
    os.environ.setdefault("SLURM_CONF", "/var/lib/longrun-slurm/etc/slurm.conf")


def run(command: list[str], **kwargs: object) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs).stdout


def slurm_epoch(text: str) -> float | None:
    try:
        return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def rpcs_by_user() -> dict[str, int]:
    """sdiag's RPC counts by user since the last `sdiag -r`."""
    out = run(["sdiag"])
    section = out.split("Remote Procedure Call statistics by user", 1)[1].split("\n\n", 1)[0]
    pattern = r"^\s*(\S+)\s+\(\s*\d+\)\s+count:(\d+)"
    return {m[1]: int(m[2]) for m in re.finditer(pattern, section, re.M)}


def wait_for(what: str, check: Callable[[], object], timeout: float, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark: timed out waiting for {what}")
        time.sleep(every)


def setup_user(name: str) -> pwd.struct_passwd:
    """A Unix user of the benchmark's own, so that sdiag counts its RPCs apart."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=True)
        return pwd.getpwnam(name)


def setup_venvs(old_tool: bool = True) -> None:
    """This checkout (and slurm-longrun 0.1.4 from PyPI), each in a virtual environment of its
    own under /var/lib/longrun-bench, where the benchmark's users can run them."""
    BENCH.mkdir(parents=True, exist_ok=True)
    BENCH.chmod(0o755)
    packages = [("longrun", str(ROOT))]
    if old_tool:
        packages.append(("slurm-longrun", "slurm-longrun==0.1.4"))
    # The system's Python: the benchmark's users may not reach this one (say, under /root).
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    for venv, package in packages:
        path = BENCH / venv
        if not (path / "bin" / "python").exists():
            subprocess.run([python, "-m", "venv", str(path)], check=True)
        pip = [str(path / "bin" / "pip"), "install", "-q", "--force-reinstall", package]
        subprocess.run(pip, check=True)


def as_user(user: str, command: list[str]) -> list[str]:
    """`command` run as `user`, with a small environment of its own."""
    account = pwd.getpwnam(user)
    env = {"HOME": account.pw_dir, "USER": user, "PATH": "/usr/bin:/bin",
           "SLURM_CONF": os.environ["SLURM_CONF"], "LANG": "C.UTF-8"}  # fmt: skip
    return ["runuser", "-u", user, "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()),
            *command]  # fmt: skip


def scheduler_parameters() -> str:
    """slurmctld's SchedulerParameters as it runs them, "(null)" when none are set."""
    for line in run(["scontrol", "show", "config"]).splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "SchedulerParameters":
            return value.strip()
    return "(null)"


@contextlib.contextmanager
def batch_sched_delay(seconds: int | None) -> Iterator[None]:
    """slurmctld runs with SchedulerParameters=batch_sched_delay=SECONDS until the block ends
    (slurm.conf changed, `scontrol reconfigure`, then restored); nothing changes for None."""
    if seconds is None:
        yield
        return
    if scheduler_parameters() != "(null)":
        raise SystemExit("slurm.conf sets SchedulerParameters already: run without the option")
    conf = Path(os.environ["SLURM_CONF"])
    saved = conf.read_text()
    wanted = f"batch_sched_delay={seconds}"
    conf.write_text(saved + f"SchedulerParameters={wanted}\n")
    try:
        run(["scontrol", "reconfigure"])
        wait_for(f"slurmctld to run with {wanted}", lambda: scheduler_parameters() == wanted, 60, 1)
        yield
    finally:
        conf.write_text(saved)
        run(["scontrol", "reconfigure"])


def machine_header(command: str) -> str:
    slurm = run(["sbatch", "--version"]).strip()
    scheduler = scheduler_parameters()
    if scheduler == "(null)":
        scheduler = "none set (batch_sched_delay is Slurm's default, 3 s)"
    return (
        f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} on {platform.node()} "
        f"({os.cpu_count()} cores, {platform.platform()}), {slurm}, the local cluster of "
        f"example/local-slurm.sh (SchedulerParameters: {scheduler}); "
        f"`sudo .venv/bin/python {command}`."
    )


@dataclass
class Job:
    job: str
    state: str
    submit: float
    start: float | None
    end: float | None


def jobs_of(user: str, since: float) -> list[Job]:
    """The user's jobs submitted since `since`, from accounting, in order of submission."""
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(since - 1))
    out = run(["sacct", "-u", user, "-X", "-P", "-n", "-S", start, "-o",
               "JobIDRaw,State,Submit,Start,End"])  # fmt: skip
    jobs = []
    for line in out.splitlines():
        job, state, submit, begin, end = line.split("|")
        submitted = slurm_epoch(submit)
        if submitted is not None and submitted >= since - 1:
            jobs.append(Job(job, state.split()[0], submitted, slurm_epoch(begin), slurm_epoch(end)))
    return sorted(jobs, key=lambda j: (j.submit, int(j.job)))


def queued(user: str, state: str = "all") -> list[str]:
    """The user's jobs slurmctld shows pending or running (state "R": running only)."""
    states = ["-t", "R"] if state == "R" else []
    return run(["squeue", "-h", "-u", user, *states, "-o", "%i"]).split()
