"""Pure parsers of Slurm's command output, tested on output captured from a real cluster."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from .errors import LongrunError
from .states import base_state, is_active, is_pending

_SUBMITTED = re.compile(r"(?:Submitted batch job\s+)?(\d+)(?:;\S+|\s+on cluster\s+\S+)?\s*$")


def parse_slurm_version(stdout: str) -> str | None:
    """`slurm 22.05.8` or `slurm-wlm 22.05.8` (what `sbatch --version` prints) -> `22.05.8`."""
    match = re.search(r"^slurm\S* (\d+\.\d+\S*)", stdout.strip())
    return match.group(1) if match else None


def parse_sbatch_job_id(stdout: str) -> str:
    """The job id from sbatch's output (`123`, `123;cluster`, `... 123 on cluster c`)."""
    for line in reversed(stdout.strip().splitlines()):
        match = _SUBMITTED.search(line.strip())
        if match:
            return match.group(1)
    raise LongrunError(f"sbatch succeeded but printed no job id: {stdout.strip()!r}")


@dataclass(frozen=True)
class QueueRow:
    """One job as `squeue -O JobID,State,Reason,...` shows it."""

    job_id: str
    state: str
    reason: str
    time_used: str
    time_left: str
    start: str
    end: str
    preempt_time: str = ""
    array_job: str = ""  # an array task's array job id
    array_task: str = ""  # an array task's index; N/A for other jobs

    @property
    def preempted(self) -> bool:
        return self.preempt_time not in ("", "N/A", "None", "Unknown")

    @property
    def task_key(self) -> str | None:
        """`ARRAYJOB_TASK` for an array task, else None."""
        if self.array_task.isdigit() and self.array_job.isdigit():
            return f"{self.array_job}_{self.array_task}"
        return None


# squeue's field for each QueueRow field, in the order asked (-O prints no names to read back).
QUEUE_COLUMNS = (
    ("JobID", "job_id"), ("State", "state"), ("Reason", "reason"), ("TimeUsed", "time_used"),
    ("TimeLeft", "time_left"), ("StartTime", "start"), ("EndTime", "end"),
    ("PreemptTime", "preempt_time"), ("ArrayJobID", "array_job"), ("ArrayTaskID", "array_task"),
)  # fmt: skip
QUEUE_FORMAT = ",".join(f"{name}:|" for name, _ in QUEUE_COLUMNS)
_QUEUE_REQUIRED = 7  # output captured before PreemptTime and the array fields still parses


def parse_squeue(stdout: str) -> dict[str, QueueRow]:
    """Rows of `squeue -r -h -O` with QUEUE_FORMAT ("|" after every field), by job id, and
    array tasks also as `ARRAYJOB_TASK`.

    A pending array task has the array's job id (its own comes when it starts), so it is found
    only as `ARRAYJOB_TASK`. Lines that are not rows (`CLUSTER: name` with -M) are skipped.
    """
    rows: dict[str, QueueRow] = {}
    for line in stdout.splitlines():
        fields = [f.strip() for f in line.split("|")][: len(QUEUE_COLUMNS)]
        if len(fields) < _QUEUE_REQUIRED or not fields[0].isdigit():
            continue
        row = QueueRow(**{attr: value for (_, attr), value in zip(QUEUE_COLUMNS, fields)})
        if row.task_key is not None:
            rows[row.task_key] = row
            if is_pending(row.state):
                continue
        rows[row.job_id] = row
    return rows


@dataclass(frozen=True)
class TaggedRow:
    """A job of the user's with its --comment, as `squeue --me -O TAG_FORMAT` shows it."""

    job_id: str
    state: str
    comment: str

    def tag_matches(self, tag: str) -> bool:
        """Active, and its comment ends with the tag (the user's own comment may precede it)."""
        return is_active(self.state) and self.comment.rstrip().endswith(tag)


TAG_FORMAT = "JobID:|,State:|,Comment:|"


def parse_tagged(stdout: str) -> list[TaggedRow]:
    """Rows of TAG_FORMAT; the comment is the rest of the line (it may hold "|")."""
    rows = []
    for line in stdout.splitlines():
        job_id, _, rest = line.partition("|")
        state, _, comment = rest.partition("|")
        if job_id.strip().isdigit():
            rows.append(TaggedRow(job_id.strip(), state.strip(), comment.removesuffix("|")))
    return rows


@dataclass(frozen=True)
class AccountingRow:
    """One allocation as `sacct -X -P` shows it with ACCOUNTING_FORMAT."""

    job_id: str
    state: str
    exit_code: str
    start: str
    end: str
    elapsed: str
    reason: str


# JobIDRaw: an array task's own job id (JobID would say ARRAYJOB_TASK); the same for other jobs.
# What sacct says on a cluster that keeps no accounting: an answer (there is no record).
NO_ACCOUNTING = "accounting storage is disabled"
# sacct's field for each AccountingRow field, in the order asked (-n: no header row to read).
ACCOUNTING_COLUMNS = (
    ("JobIDRaw", "job_id"), ("State", "state"), ("ExitCode", "exit_code"), ("Start", "start"),
    ("End", "end"), ("Elapsed", "elapsed"), ("Reason", "reason"),
)  # fmt: skip
ACCOUNTING_FORMAT = ",".join(name for name, _ in ACCOUNTING_COLUMNS)


def parse_sacct(stdout: str) -> dict[str, AccountingRow]:
    """Rows of `sacct -n -X -P -o ACCOUNTING_FORMAT`; a requeued job keeps its last record."""
    rows: dict[str, AccountingRow] = {}
    for line in stdout.splitlines():
        fields = line.split("|")
        if len(fields) != len(ACCOUNTING_COLUMNS) or not fields[0]:
            continue
        values = {attr: value for (_, attr), value in zip(ACCOUNTING_COLUMNS, fields)}
        values["state"] = values["state"].split(" ", 1)[0].rstrip("+")  # "<STATE> by <uid>"
        rows[fields[0]] = AccountingRow(**values)
    return rows


def slurm_epoch(text: str | None) -> int | None:
    """Seconds since the epoch for a Slurm timestamp (`2026-11-25T21:11:12`, local time).

    None for what Slurm writes when there is no time: `Unknown`, `None`, `N/A` or nothing.
    """
    if not text or not text[:1].isdigit():
        return None
    try:
        return int(time.mktime(time.strptime(text.strip(), "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None


# --- what jobs cost: `longrun usage` ----------------------------------------------------------
# Read by the header row sacct prints (not by position), so that a field added here or a Slurm
# that orders them otherwise cannot shift the values.
USAGE_FIELDS = (
    "JobID", "JobIDRaw", "State", "Submit", "Eligible", "Start", "End", "ElapsedRaw",
    "AllocCPUS", "TotalCPU", "AllocTRES", "MaxRSS", "NodeList",
)  # fmt: skip
USAGE_FORMAT = ",".join(USAGE_FIELDS)
_MEMORY_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50}


@dataclass(frozen=True)
class UsageRow:
    """One run of one job (a requeued job has several), with the peak memory of its steps."""

    job: str  # as sacct names it: 123, or ARRAYJOB_TASK for an array task
    job_raw: str  # the job's own id
    state: str
    submit: int | None
    eligible: int | None
    start: int | None
    end: int | None
    elapsed: int  # seconds
    cpus: int  # allocated
    cpu_used: float  # seconds of CPU time its processes used (TotalCPU)
    gpus: int  # allocated (AllocTRES gres/gpu)
    max_rss: int | None  # bytes: the largest MaxRSS of its steps; None when none was gathered
    nodes: str


def cpu_seconds(text: str) -> float:
    """sacct's TotalCPU (`[D-][HH:]MM:SS[.mmm]`) in seconds; 0 for anything else."""
    days, _, rest = text.strip().rpartition("-")
    parts = rest.split(":")
    try:
        seconds = float(parts[-1]) if parts[-1] else 0.0
        minutes = int(parts[-2]) if len(parts) > 1 else 0
        hours = int(parts[-3]) if len(parts) > 2 else 0
        return int(days or 0) * 86400 + hours * 3600 + minutes * 60 + seconds
    except ValueError:
        return 0.0


def memory_bytes(text: str) -> int | None:
    """sacct's MaxRSS (`170084K`, `1.5G`, `0`) in bytes; None when empty."""
    match = re.fullmatch(r"\s*([\d.]+)([KMGTP]?)\s*", text or "")
    if not match:
        return None
    try:
        return int(float(match.group(1)) * _MEMORY_UNITS[match.group(2)])
    except ValueError:
        return None


def gpu_count(tres: str) -> int:
    """GPUs in an AllocTRES (`cpu=2,gres/gpu=1,node=1`); typed counts (`gres/gpu:a100=1`) when
    Slurm gives no total."""
    total, typed = None, 0
    for item in tres.split(","):
        name, _, value = item.partition("=")
        if not value.isdigit():
            continue
        if name == "gres/gpu":
            total = int(value)
        elif name.startswith("gres/gpu:"):
            typed += int(value)
    return typed if total is None else total


def parse_usage(stdout: str) -> list[UsageRow]:
    """The job records of `sacct -P -D -o USAGE_FORMAT` (with its header row), each with the
    peak MaxRSS of its own steps (`123.batch`, `123.0`, ...), in sacct's order."""
    lines = stdout.splitlines()
    wanted = set(USAGE_FIELDS)
    header = next((i for i, line in enumerate(lines) if wanted <= set(line.split("|"))), None)
    if header is None:
        return []
    names = lines[header].split("|")
    runs: list[dict[str, str]] = []
    peaks: list[int | None] = []
    for line in lines[header + 1 :]:
        values = line.split("|")
        if len(values) != len(names):
            continue
        record = dict(zip(names, values))
        if "." not in record["JobID"]:
            runs.append(record)
            peaks.append(memory_bytes(record["MaxRSS"]))
        elif runs and record["JobID"].split(".", 1)[0] == runs[-1]["JobID"]:
            rss = memory_bytes(record["MaxRSS"])
            if rss is not None:
                peaks[-1] = max(peaks[-1] or 0, rss)
    return [
        UsageRow(
            job=record["JobID"],
            job_raw=record["JobIDRaw"],
            state=base_state(record["State"]),
            submit=slurm_epoch(record["Submit"]),
            eligible=slurm_epoch(record["Eligible"]),
            start=slurm_epoch(record["Start"]),
            end=slurm_epoch(record["End"]),
            elapsed=int(record["ElapsedRaw"]) if record["ElapsedRaw"].isdigit() else 0,
            cpus=int(record["AllocCPUS"]) if record["AllocCPUS"].isdigit() else 0,
            cpu_used=cpu_seconds(record["TotalCPU"]),
            gpus=gpu_count(record["AllocTRES"]),
            max_rss=peak,
            nodes=record["NodeList"],
        )
        for record, peak in zip(runs, peaks)
    ]


_HOSTLIST_PART = re.compile(r"([^,\[]+)(?:\[([^\]]*)\])?([^,\[]*)")


MAX_HOSTNAMES = 65536  # Slurm's own bound on a host list (MAX_RANGE in hostlist.c)


def hostnames(hostlist: str) -> list[str]:
    """Slurm's host list in node names (`vm,node[01-03]` -> vm node01 node02 node03), as
    `scontrol show hostnames` gives them; one bracket per name, as Slurm writes them. A range
    beyond MAX_HOSTNAMES names in all stays one name, as written (a damaged file)."""
    names: list[str] = []
    for match in _HOSTLIST_PART.finditer(hostlist.strip()[:10000]):
        prefix, ranges, suffix = match.groups()
        if ranges is None:
            names.append(prefix + suffix)
            continue
        for part in ranges.split(","):
            low, _, high = part.partition("-")
            # (a number longer than any node index is a name as written: int() of thousands of
            # digits is refused)
            valid = low.isdigit() and (not high or high.isdigit()) and len(low + high) < 20
            if not valid or len(names) + int(high or low) - int(low) >= MAX_HOSTNAMES:
                names.append(f"{prefix}[{part}]{suffix}")
                continue
            for number in range(int(low), int(high or low) + 1):
                names.append(f"{prefix}{number:0{len(low)}d}{suffix}")
    return [name for name in names if name]
