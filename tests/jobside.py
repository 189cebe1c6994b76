"""A chain's job side, run whole: the rendered link script with its library, as Slurm would
start it, against stand-in Slurm commands whose answers each test chooses (tests/unit)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from longrun import states
from longrun.chain_record import ChainRecord
from longrun.chain_store import ChainFolder
from longrun.plan import WrapperOptions
from longrun.render import render_library, render_link_script, shquote
from plantest import chain_location, plan_of
from slurmguard import guarded_path

# A stand-in for sbatch, scontrol, sacct, scancel, squeue and sinfo. It logs every call, and
# answers from files in its folder: scontrol-JOB (a job's record) or scontrol-JOB.err (Slurm's
# words when it fails), sacct-JOB; sbatch hands out job ids from 300 on.
FAKE_SLURM = r"""#!/bin/bash
dir=$(dirname "$0") name=${0##*/}
printf '%s\n' "$name $*" >>"$dir/calls"
# What a test has this command do first (JobSide.on_call).
[ -f "$dir/on-$name" ] && . "$dir/on-$name"
case $name in
    sbatch)
        id=$(cat "$dir/next-id" 2>/dev/null || echo 300)
        echo $((id + 1)) >"$dir/next-id"
        # (JobSide.queued_jobs_pend: slurmctld then shows the job it queued PENDING)
        if [ -f "$dir/pending-record" ] && [ ! -f "$dir/scontrol-$id" ]; then
            sed "s/JOBID/$id/" "$dir/pending-record" >"$dir/scontrol-$id"
        fi
        echo "$id" ;;
    scontrol)
        [ "$1" = update ] && exit 0
        # scontrol show hostnames a,b: a local command, no question to slurmctld.
        [ "$2" = hostnames ] && { tr ',' '\n' <<<"$3"; exit 0; }
        job=${*: -1}
        if [ -f "$dir/scontrol-$job.err" ]; then cat "$dir/scontrol-$job.err" >&2; exit 1; fi
        if [ -f "$dir/scontrol-$job" ]; then cat "$dir/scontrol-$job"; exit 0; fi
        echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1 ;;
    sacct)
        while [ $# -gt 0 ] && [ "$1" != -j ]; do shift; done
        [ -f "$dir/sacct.err" ] && { cat "$dir/sacct.err" >&2; exit 1; }
        cat "$dir/sacct-$2" 2>/dev/null; exit 0 ;;
    sinfo)
        [ -f "$dir/sinfo.out" ] || exit 1
        cat "$dir/sinfo.out"; exit 0 ;;
esac
exit 0
"""

RECORD = """JobId={job} JobName=job.sh
   UserId=root(0) GroupId=root(0) MCS_label=N/A
   JobState={state} Reason={reason} Dependency=(null)
   Requeue=1 Restarts={restarts} BatchFlag=1 Reboot=0 ExitCode=0:0
   RunTime=00:00:05 TimeLimit=01:00:00 TimeMin=N/A
   StartTime=2026-11-30T10:00:00 EndTime=2026-11-30T11:00:00 Deadline=N/A
   PreemptEligibleTime=2026-11-30T10:00:00 PreemptTime={preempt}
   Partition=main AllocNode:Sid=vm:1
"""

BODY = """#!/bin/bash
echo "$SLURM_JOB_ID" >>{bodies}
# What a test has the script do (tests/unit/test_security.py: its PATH, its umask...).
[ -f {hook} ] && . {hook}
# The pre-timeout signal, as Slurm would send it to the batch shell while the script runs.
[ -f {signal} ] && kill -USR1 "$PPID" && sleep 1
exit "$(cat {exit_code} 2>/dev/null || echo 0)"
"""


@dataclass
class Link:
    """What one run of a link script did."""

    returncode: int
    stderr: str


class JobSide:
    """One chain's folder, its rendered link script and library, and the stand-in Slurm."""

    def __init__(
        self,
        tmp_path: Path,
        wrapper: WrapperOptions | None = None,
        base: Path | None = None,
        settings: dict[str, str] | None = None,
        argv: list[str] | None = None,
    ) -> None:
        """The chain's state directory in `base` (default: tmp_path), the rest in tmp_path;
        `settings`: LONGRUN_* settings of the submission environment; `argv`: sbatch options."""
        self.tmp = tmp_path
        self.bin = tmp_path / "slurm-bin"
        self.bin.mkdir()
        fake = self.bin / "fake-slurm"
        fake.write_text(FAKE_SLURM)
        fake.chmod(0o755)
        for name in ("sbatch", "scontrol", "sacct", "scancel", "squeue", "sinfo"):
            (self.bin / name).symlink_to(fake)
        self.bodies = tmp_path / "bodies"
        where = chain_location(base or tmp_path, str(self.bin))
        body = BODY.format(
            bodies=shquote(self.bodies),
            exit_code=shquote(tmp_path / "exit-code"),
            signal=shquote(tmp_path / "signal"),
            hook=shquote(tmp_path / "hook"),
        )
        environ = {
            "LONGRUN_JUDGE_SECONDS": "0",
            "LONGRUN_ANSWER_SECONDS": "0",
            "LONGRUN_SUBMIT_RETRY_SECONDS": "0",
            # A beat a second: a link waits two beats for a lost predecessor's script.
            "LONGRUN_HEARTBEAT_SECONDS": "1",
        }
        environ.update(settings or {})
        plan = plan_of(body, argv or [], where=where, wrapper=wrapper, environ=environ)
        self.plan = plan
        self.chain = ChainFolder(Path(where.chain_dir))
        self.chain.write_link_script(render_link_script(plan))
        self.chain.write_library(render_library())
        self.chain.write_env({"PATH": "/usr/bin:/bin"})

    def write_record(self) -> None:
        """The chain's chain.json, as a submission on a login node writes it (for the repair
        and the views, which read it); the folder made yours alone, as submission makes it."""
        self.chain.path.chmod(0o700)
        self.chain.write_meta(
            ChainRecord.from_plan(
                self.plan, sbatch_argv=[], script_source="job.sh", library_sha256="", user="ann",
                uid=0, host="login", created="2026-12-01T00:00:00", longrun_version="t",
            )
        )  # fmt: skip

    # --- what Slurm answers ---------------------------------------------------------------
    def slurm_shows(
        self, job: str, state: str, *, preempted: bool = False, restarts: int = 0
    ) -> None:
        """slurmctld's record of `job` (`restarts`: how often Slurm requeued it)."""
        reason = "TimeLimit" if state == states.TIMEOUT else "None"
        preempt = "2026-11-30T10:30:00" if preempted else "None"
        record = RECORD.format(
            job=job, state=state, reason=reason, preempt=preempt, restarts=restarts
        )
        (self.bin / f"scontrol-{job}").write_text(record)

    def queued_jobs_pend(self) -> None:
        """From now on slurmctld shows each job the stand-in sbatch queues as PENDING, as Slurm
        would, instead of not knowing it: for links that look at their successor again."""
        record = RECORD.format(
            job="JOBID", state=states.PENDING, reason="Dependency", preempt="None", restarts=0
        )
        (self.bin / "pending-record").write_text(record)

    def on_call(self, command: str, shell: str) -> None:
        """The stand-in for `command` also runs these lines first, in its own process."""
        (self.bin / f"on-{command}").write_text(shell + "\n")

    def slurm_fails(self, job: str, words: str) -> None:
        (self.bin / f"scontrol-{job}.err").write_text(words + "\n")

    def accounting_fails(self, words: str) -> None:
        (self.bin / "sacct.err").write_text(words + "\n")

    def previous_verdict(self, job: str, verdict: str) -> None:
        folder = self.chain.link_dir(job)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "verdict").write_text(verdict + "\n")

    def signal_during_body(self) -> None:
        """The body gets the pre-timeout check signal sent to its link while it runs."""
        (self.tmp / "signal").touch()

    def body_runs(self, shell: str) -> None:
        """The script also runs these lines (before the signal and the exit)."""
        (self.tmp / "hook").write_text(shell + "\n")

    def body_exits(self, code: int) -> None:
        (self.tmp / "exit-code").write_text(f"{code}\n")

    # --- running links --------------------------------------------------------------------
    def partition_has(self, *nodes: str) -> None:
        """What sinfo lists as the partition's nodes (without it, sinfo fails)."""
        (self.bin / "sinfo.out").write_text(",".join(nodes) + "\n")

    def calls(self, command: str) -> list[str]:
        path = self.bin / "calls"
        lines = path.read_text().splitlines() if path.exists() else []
        return [line for line in lines if line.startswith(f"{command} ")]

    def command(
        self, job: str, restart: int, previous: str = "", retries: int = 0, *more: str
    ) -> list[str]:
        args = [f"--restart-count={restart}", "--initial-job=100", f"--retries={retries}"]
        if previous:
            args.append(f"--previous-job={previous}")
        return ["bash", str(self.chain.link_script), *args, *more]

    def environ(self, job: str, slurm_restarts: int = 0, path: str = "") -> dict[str, str]:
        env = {"PATH": path or f"{self.bin}:{guarded_path()}", "SLURM_JOB_ID": job}
        if slurm_restarts:
            env["SLURM_RESTART_COUNT"] = str(slurm_restarts)
        return env

    def run(
        self,
        job: str,
        restart: int,
        previous: str = "",
        retries: int = 0,
        slurm_restarts: int = 0,
        *,
        umask: int | None = None,
        path: str = "",
        cwd: Path | None = None,
        arguments: tuple[str, ...] = (),
        slurm_env: dict[str, str] | None = None,
    ) -> Link:
        """Run the link script as job `job` would, until it exits (with this umask, PATH and
        working directory if given; more link `arguments`; more of Slurm's SLURM_* variables
        in `slurm_env`)."""
        self.slurm_shows(job, states.RUNNING)
        result = subprocess.run(
            self.command(job, restart, previous, retries, *arguments),
            env={**self.environ(job, slurm_restarts, path), **(slurm_env or {})},
            capture_output=True, text=True, timeout=60, check=False, cwd=cwd,
            preexec_fn=None if umask is None else (lambda: os.umask(umask)),
        )  # fmt: skip
        return Link(result.returncode, result.stderr)

    def bodies_run(self) -> list[str]:
        return self.bodies.read_text().split() if self.bodies.exists() else []

    def events(self, kind: str) -> list[dict[str, str]]:
        return [e for e in self.chain.read_events() if e["event"] == kind]

    def submitted(self) -> list[str]:
        calls = (
            (self.bin / "calls").read_text().splitlines() if (self.bin / "calls").exists() else []
        )
        return [call for call in calls if call.startswith("sbatch ")]
