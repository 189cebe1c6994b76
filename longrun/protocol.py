"""The protocol between longrun's Python side and the job side (bash): both sides read it here.

- the names of the files in a chain folder that both sides read or write;
- the link script's arguments and the tag that finds a link's job in the queue;
- the events each side writes, with their fields (tests/unit/test_protocol.py checks that the
  templates and the Python code write exactly these);
- the environment snapshot that later links are submitted with: its writer and its reader.

The job side gets the names rendered into its helper library (see longrun/render.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import states

# --- the chain folder ------------------------------------------------------------------------
CHAINS = "chains"  # in the state directory: one folder per chain
JOBS = "jobs"  # in the state directory: jobs/<job-id> holds the job's chain id
META = "chain.json"
SCRIPT = "script"
LINK_SCRIPT = "link.sh"
LIBRARY = "library.sh"
ENV = "env"
ENDED = "ended"
SUMMARY = "summary.json"  # the list row of an ended chain, with its stamp (longrun/view_cache.py)
KEPT_VIEW = "view.json"  # the status view of an ended chain, with its stamp
EVENTS = "events.jsonl"  # a link's events, in its own folder (and the log of old chains)
EVENTS_DIR = "events.d"  # one event file per longrun process
LINKS = "links"
ELEMENTS = "elements"  # elements/<index>/ended: an array element's end state
# In links/<job-id>/, written by that link only (the claim: by the link that continues it).
VERDICT = "verdict"
SUCCESSOR = "successor"
STREAK = "streak"
STOP_AFTER = "stop_after"
CLAIM = "claim"
SBATCH_ERRORS = "sbatch.err"
NOTIFY_ERRORS = "notify.err"  # what the last POST to --notify-url said on failure
# What a link learned, for the links after it (key=value lines, replaced whole): its nodes, the
# progress file as it found it, the idle links before it, its start and end, the run time of
# the links before it (see LEARNED_KEYS).
LEARNED = "learned"
# Nodes the chain avoids because of this link: "NODE UNTIL_EPOCH CAUSE" lines; every link
# reads every link's file (the writers never share one).
AVOID = "avoid"
# A link that may not submit (--submit-from=login) leaves its successor's submission here for a
# keeper on a login node (README: Sites that forbid submission from compute nodes); see
# REQUEST_FORMAT below.
REQUEST = "request"
# Every link that submits its successor itself writes the same record here first, for the
# watcher's repair should every submission fail (the successor is built by the job side only).
COMMAND = "command"
# Touched by a link while its script runs (a change tells it beats; mtimes are never compared
# with a clock): a link that continues one that lost its node waits for it to stop.
HEARTBEAT = "heartbeat"
# The jobs whose scripts a link waits to see stopped (their heartbeat still) before its own
# runs, written before the wait and removed after it: a link that ends during the wait (killed,
# SIGTERM) leaves the duty to its successor, which waits for them too.
ORPHANS = "orphans"
# "run" once a link's judging let it run the body: a run of the job that Slurm requeued keeps
# that judgement (the previous link's record may be gone by then).
JUDGEMENT = "judgement"
# Written by longrun on a login node only (never read by the job side).
LOCK = ".lock"  # the chain lock (flock): repair, end, cancel, keep hold it
WATCH_LOG = "watch.log"  # a detached watcher's output
WATCH_PID = "watch.pid"  # its process id
KEEPER_LOG = "keeper.log"  # in the state directory: what `longrun keeper --install` runs says

PATHS = {
    "jobs": JOBS, "library": LIBRARY, "link_script": LINK_SCRIPT, "env": ENV, "ended": ENDED,
    "events": EVENTS, "links": LINKS, "elements": ELEMENTS, "verdict": VERDICT,
    "successor": SUCCESSOR, "streak": STREAK, "stop_after": STOP_AFTER, "claim": CLAIM,
    "sbatch_errors": SBATCH_ERRORS, "notify_errors": NOTIFY_ERRORS, "learned": LEARNED,
    "avoid": AVOID, "request": REQUEST, "command": COMMAND, "judgement": JUDGEMENT,
    "heartbeat": HEARTBEAT, "orphans": ORPHANS,
}  # fmt: skip
# What a link got when it asked Slurm how its predecessor ended (the `answer` of `judged`): a
# final state; that Slurm no longer knows the job; no final answer within the wait.
ANSWER_FINAL = "final"
ANSWER_FORGOTTEN = "forgotten"
ANSWER_NONE = "none"
LEARNED_KEYS = (
    "nodes", "mtime", "idle", "started", "ended", "used", "rerun", "handover", "handovers",
)  # fmt: skip

# --- the link script's arguments -------------------------------------------------------------
ARGUMENTS = {
    "restart_count": "--restart-count",  # 0 for the first link
    "initial_job": "--initial-job",  # the first link's job id
    "previous_job": "--previous-job",  # the job this link continues
    "retries": "--retries",  # --retry-failed retries used so far
    # An array element's later links: ARRAYJOB,TASK,COUNT,MIN,MAX,STEP as Slurm gave them to
    # the element's first link (SLURM_ARRAY_*).
    "array_element": "--array-element",
    # Links that handed over without running the body (a node the chain avoids, more memory):
    # they do not count against --max-restarts.
    "free_links": "--free-links",
    # The memory the chain asks for after --grow-mem-on-oom grew it: mem=MB or mem-per-cpu=MB.
    "memory": "--memory",
    # `login`: the link leaves its successor to a keeper on a login node (a link that found
    # its compute node may not submit passes it on to every later link).
    "submit_from": "--submit-from",
}


def link_arguments(
    restart_count: int,
    initial_job: str = "",
    previous_job: str = "",
    retries: int = 0,
    array_element: str = "",
    free_links: int = 0,
    memory: str = "",
    submit_from: str = "",
) -> list[str]:
    """The arguments of the link script for one link (values left out when unknown)."""
    values = {
        "restart_count": str(restart_count),
        "initial_job": initial_job,
        "previous_job": previous_job,
        "retries": str(retries),
        "array_element": array_element,
        "free_links": str(free_links) if free_links else "",
        "memory": memory,
        "submit_from": submit_from if submit_from == SUBMIT_FROM_LOGIN else "",
    }
    return [f"{ARGUMENTS[name]}={value}" for name, value in values.items() if value]


# Where successors are submitted from: by each link from its compute node (the default), or by
# a keeper on a login node.
SUBMIT_FROM_COMPUTE = "compute"
SUBMIT_FROM_LOGIN = "login"
SUBMIT_FROM = (SUBMIT_FROM_COMPUTE, SUBMIT_FROM_LOGIN)
# What sbatch says on a compute node that may not submit (a partition's AllocNodes, or a
# job_submit plugin that denies it; Slurm 22.05 and 24.11 alike: "sbatch: error: Batch job
# submission failed: Access/permission denied"). The link then leaves its successor to a keeper.
SUBMIT_REFUSALS = ("Access/permission denied",)
# What sbatch says when it refuses a job for a limit or a setting that does not pass with time
# (a submit limit, an account or partition that is not valid): not worth 5 minutes of retries
# before the script starts. The link starts the script at once and keeps trying while it runs.
SUBMIT_LIMITS = (
    "Job violates accounting/QOS policy", "MaxSubmitJob", "Invalid account", "Invalid partition",
    "Invalid qos",
)  # fmt: skip

# A request file: NUL-terminated fields: REQUEST_FORMAT, the umask, the directory to submit
# from, the number N of environment entries, N entries NAME=VALUE (sbatch's own environment,
# without SLURM_CONF: the keeper's is used), then sbatch's arguments (no program name). Written
# whole by the link (a rename); a keeper runs `sbatch` of its own PATH with them.
REQUEST_FORMAT = "longrun-request-1"

# The exit code with which a script asks for a new link at once (EX_TEMPFAIL, "try again"),
# given to it as SLURM_LONGRUN_CONTINUE_CODE.
CONTINUE_EXIT_CODE = 75

TAG_PREFIX = "longrun:"


def link_tag(chain_id: str, link_number: int) -> str:
    """The --comment that finds a link's job in the queue when sbatch's answer was lost:
    `longrun:<chain>:<link number, 1-based>` (an array element: `<chain>_<index>`), after the
    user's own comment."""
    return f"{TAG_PREFIX}{chain_id}:{link_number}"


# Signals that Slurm may send to a link's batch shell alone (`scancel --batch --signal=SIG`):
# the link gives each to your script, which plain sbatch would have run as that shell (SIGTERM
# and the pre-timeout signal have handlers of their own; timers, job control, SIGCHLD and
# SIGXFSZ, which the link's own writes may raise, are the link shell's own business).
BATCH_SIGNALS = ("HUP", "INT", "QUIT", "USR1", "USR2", "XCPU")

# --- events ----------------------------------------------------------------------------------
# Every event has: time, epoch, t (sub-second), event. Events of the job side also have job and
# restart_count (of the link that writes them); in every event, job and restart_count describe
# the same link.
LINK_STARTED = "link_started"
CLAIMED = "claimed"
CLAIM_LOST = "claim_lost"
JUDGED = "judged"
CLAIM_FAILED = "claim_failed"  # the claim could not be created (not: another job holds it)
ORPHAN_STOPPED = "orphan_stopped"  # a link's script stopped: another job continues it already
ORPHAN_WAIT = "orphan_wait"  # a link waits for the script of a link on a lost node to stop
WAITING = "waiting"  # the link waits for Slurm's answer: about which job, to what question
WARNING = "warning"
RETRY = "retry"
NO_SUCCESSOR = "no_successor"
SUCCESSOR_QUEUED = "successor_queued"
SUCCESSOR_RETRY = "successor_retry"
SUCCESSOR_FOUND = "successor_found"
SUCCESSOR_FAILED = "successor_failed"
SUCCESSOR_UNCHECKED = "successor_unchecked"
SUCCESSOR_MISSING = "successor_missing"
SUCCESSOR_CANCELLED = "successor_cancelled"
SUCCESSOR_CANCEL_FAILED = "successor_cancel_failed"
SUCCESSOR_STOPPED = "successor_stopped"  # it ended before it ran: stop after this link
CHAIN_ENDED = "chain_ended"
CHAIN_END_KEPT = "chain_end_kept"
MAIL_REQUESTED = "mail_requested"
MAIL_FAILED = "mail_failed"
BACKOFF = "backoff"
BACKOFF_FAILED = "backoff_failed"
PRETIMEOUT_SIGNAL = "pretimeout_signal"
SIGNAL_HELD = "signal_held"  # a signal for your script that came before it ran
SIGNAL_FORWARDED = "signal_forwarded"
SIGTERM = "sigterm"
BODY_SKIPPED = "body_skipped"
BODY_NOT_WRITTEN = "body_not_written"
BODY_STARTED = "body_started"
BODY_EXITED = "body_exited"
NODE_CHECK = "node_check"
VERDICT_RECORDED = "verdict"
LINK_INTERRUPTED = "link_interrupted"  # the previous link ended and the chain goes on
CHAIN_STALLED = "chain_stalled"  # the chain should go on, but no successor is queued
PROGRESS = "progress"  # when --progress-file last changed, as a link saw it
NOTIFY_FAILED = "notify_failed"  # a notifier failed or timed out; the chain goes on
# What the chain learned (README: A chain that learns).
NODES_AVOIDED = "nodes_avoided"  # nodes later links of the chain stay off, until a time
AVOID_DROPPED = "avoid_dropped"  # the avoided nodes would leave no place to run: not excluded
NODE_CHECK_FAILED = "node_check_failed"  # --node-check failed on this link's node
HANDED_OVER = "handed_over"  # this link did not run the body: its successor runs elsewhere
MEMORY_GROWN = "memory_grown"  # a link ran out of memory: later links ask for more
TIME_CUT = "time_cut"  # this link's time limit was cut to what is left of --total-time
# Sites that forbid submission from compute nodes.
SUCCESSOR_REFUSED = "successor_refused"  # sbatch refused the successor for a limit (retried)
SUBMIT_REFUSED = "submit_refused"  # sbatch said this compute node may not submit
SUCCESSOR_REQUESTED = "successor_requested"  # left to a keeper on a login node (REQUEST)
# Written by longrun's Python side.
SUBMITTING = "submitting"
SUBMITTED = "submitted"
FINAL_STATE = "final_state"
JOBS_CANCELLED = "cancelled"
REPAIRED = "repaired"
REPAIR_REFUSED = "repair_refused"  # a stalled link the watcher does not repair again
KEEPER_FAILED = "keeper_failed"  # a keeper's sbatch for a requested successor failed
CANCELLED_BEYOND_MAX = "cancelled_beyond_max"

JOB_SIDE_EVENTS: Mapping[str, tuple[str, ...]] = {
    LINK_STARTED: ("previous", "slurm_restarts", "node", "retries", "element", "array", "output",
                   "output_offset", "error", "error_offset", "nodes", "memory", "free_links",
                   "deadline"),
    CLAIMED: ("previous",),
    CLAIM_LOST: ("previous", "owner"),
    JUDGED: ("previous", "verdict", "slurm_state", "answer", "preempted", "outcome", "reason",
             "start", "end", "steps_out_of_memory", "kept"),
    CLAIM_FAILED: ("previous", "error"),
    WAITING: ("about", "question", "seconds", "reason"),
    ORPHAN_STOPPED: ("successor",),
    ORPHAN_WAIT: ("orphan", "seconds"),
    WARNING: ("message",),
    RETRY: ("attempt", "of"),
    NO_SUCCESSOR: ("reason",),
    SUCCESSOR_QUEUED: ("successor",),
    SUCCESSOR_RETRY: ("exit_code", "error", "retry_in"),
    SUCCESSOR_FOUND: ("successor",),
    SUCCESSOR_FAILED: ("exit_code", "error"),
    SUCCESSOR_UNCHECKED: ("successor",),
    SUCCESSOR_MISSING: ("successor", "state"),
    SUCCESSOR_CANCELLED: ("successor",),
    SUCCESSOR_CANCEL_FAILED: ("successor",),
    SUCCESSOR_STOPPED: ("successor", "state"),
    CHAIN_ENDED: ("state", "reason"),
    CHAIN_END_KEPT: ("state", "recorded"),
    MAIL_REQUESTED: ("state",),
    MAIL_FAILED: ("state",),
    BACKOFF: ("successor", "seconds", "short_links"),
    BACKOFF_FAILED: ("successor", "seconds"),
    PRETIMEOUT_SIGNAL: ("signal",),
    SIGNAL_FORWARDED: ("signal", "processes"),
    SIGNAL_HELD: ("signal",),
    SIGTERM: ("slurm_state", "reason", "preempted", "cause", "verdict", "final", "answered"),
    BODY_SKIPPED: ("reason",),
    BODY_NOT_WRITTEN: ("path",),
    BODY_STARTED: ("pid",),
    BODY_EXITED: ("exit_code",),
    NODE_CHECK: ("seconds",),
    VERDICT_RECORDED: ("verdict", "reason", "exit_code", "start", "slurm_state", "preempted"),
    LINK_INTERRUPTED: ("previous", "slurm_state", "verdict", "reason"),
    CHAIN_STALLED: ("reason",),
    PROGRESS: ("at", "previous", "mtime", "value", "idle"),
    NOTIFY_FAILED: ("notifier", "notified", "exit_code", "error"),
    NODES_AVOIDED: ("nodes", "until", "cause"),
    AVOID_DROPPED: ("nodes", "reason"),
    NODE_CHECK_FAILED: ("nodes", "exit_code"),
    HANDED_OVER: ("reason", "successor"),
    MEMORY_GROWN: ("option", "before", "after", "maximum"),
    TIME_CUT: ("used", "total", "limit"),
    SUBMIT_REFUSED: ("error",),
    SUCCESSOR_REFUSED: ("error",),
    SUCCESSOR_REQUESTED: ("next", "reason"),
}  # fmt: skip

# A progress event's `at`: a link's look at its start (about the previous link: the file as that
# link left it, even if it was killed) or at its end (about itself).
PROGRESS_AT_START = "start"
PROGRESS_AT_END = "end"

# --notify-on: the events the job side tells the notifiers about. By default the chain's end and
# what needs a person; `all` adds every link.
NOTIFY_EVENTS: Mapping[str, tuple[str, ...]] = {
    "end": (
        CHAIN_ENDED,
        CHAIN_STALLED,
        SUCCESSOR_FAILED,
        SUCCESSOR_REFUSED,
        AVOID_DROPPED,
        SUBMIT_REFUSED,
    ),
    "all": (
        CHAIN_ENDED,
        CHAIN_STALLED,
        SUCCESSOR_FAILED,
        SUCCESSOR_REFUSED,
        LINK_STARTED,
        LINK_INTERRUPTED,
        NODES_AVOIDED,
        AVOID_DROPPED,
        MEMORY_GROWN,
        SUBMIT_REFUSED,
    ),
}

PYTHON_SIDE_EVENTS: Mapping[str, tuple[str, ...]] = {
    SUBMITTING: ("command",),
    SUBMITTED: ("job", "restart_count"),
    FINAL_STATE: ("job", "state", "start", "end", "source"),
    CHAIN_ENDED: ("state", "reason", "by", "cancelled", "element"),
    JOBS_CANCELLED: ("jobs", "by", "element"),
    SUCCESSOR_FOUND: ("job", "successor", "by"),
    # built_by: link (the link's own request or command, submitted without the wait), or
    # watcher (the link left none: it was killed before it built its successor).
    REPAIRED: ("job", "restart_count", "successor", "command", "built_by"),
    REPAIR_REFUSED: ("job", "reason", "element"),
    # A keeper queued a requested successor (by: keeper, watcher).
    SUCCESSOR_QUEUED: ("job", "successor", "by"),
    KEEPER_FAILED: ("job", "error", "by"),
    CANCELLED_BEYOND_MAX: ("job", "max_restarts"),
}

# Numbers beyond this (2**53, the last integer a float holds exactly) are not a time, an
# offset or a count that longrun wrote.
MAX_NUMBER = 1 << 53

# Fields every event has, whoever wrote it (the job side writes all of them; Python: `t`,
# `time`, `event` and the job where it has one).
COMMON_FIELDS = ("time", "epoch", "t", "event", "job", "restart_count")


def declared_fields() -> frozenset[str]:
    """Every field an event of either side may have."""
    fields = {field for table in (JOB_SIDE_EVENTS, PYTHON_SIDE_EVENTS) for f in table.values()
              for field in f}  # fmt: skip
    return frozenset({*COMMON_FIELDS, *fields})


class Event(dict[str, Any]):
    """One event as the event reader returns it: the writer's fields (declared above), read
    through typed accessors, never with `str(event.get(key) or "")`. Still a dict, so that a
    reader may pass it on whole (and tests may write one as a dict literal)."""

    __slots__ = ()

    @property
    def kind(self) -> str:
        """The event's name (`event`)."""
        return self.text("event")

    @property
    def job(self) -> str:
        return self.text("job")

    def text(self, field: str) -> str:
        """A field as text; "" when it is missing, null, false or empty."""
        value = self.get(field)
        return str(value) if value else ""

    def number(self, field: str) -> int | None:
        """A field that holds a whole number (an int, or digits in a string as the job side
        writes them), or None: missing, not a number, or beyond 2**53 (no time, offset or
        count that longrun wrote; a damaged or hostile file)."""
        value = self.get(field)
        if isinstance(value, bool) or (isinstance(value, str) and len(value) > 40):
            return None  # (int() takes long on long texts)
        try:
            number = int(value)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            return None
        return number if -MAX_NUMBER <= number <= MAX_NUMBER else None


def as_event(event: Mapping[str, Any]) -> Event:
    return event if isinstance(event, Event) else Event(event)


def as_events(events: Iterable[Mapping[str, Any]]) -> list[Event]:
    """Events as Event records (those that are already stay the same objects)."""
    return [event if isinstance(event, Event) else Event(event) for event in events]


# Events that tell which job continues a link (its `successor` field).
SUCCESSOR_EVENTS = frozenset({SUCCESSOR_QUEUED, SUCCESSOR_FOUND, REPAIRED})


# Chains made by longrun 0.1 named some events and fields otherwise; readers upgrade them.
LEGACY_EVENTS = {
    "decision": VERDICT_RECORDED,
    "standby_submitted": SUCCESSOR_QUEUED,
    "successor_cancelled_by_user": SUCCESSOR_STOPPED,
}
# Fields an upgraded event lacks, by its new name.
LEGACY_DEFAULTS: Mapping[str, Mapping[str, str]] = {
    SUCCESSOR_STOPPED: {"state": states.CANCELLED},
}
LEGACY_FIELDS = {"link": "restart_count", "standby": "successor"}


def upgrade_event(event: dict[str, Any]) -> dict[str, Any]:
    """An event of a chain made by longrun 0.1, in this protocol's words (others unchanged)."""
    kind = str(event.get("event", ""))
    if (
        kind.startswith("standby")
        or kind in LEGACY_EVENTS
        or not LEGACY_FIELDS.keys().isdisjoint(event)
    ):
        kind = LEGACY_EVENTS.get(kind, kind.replace("standby", "successor"))
        event = {LEGACY_FIELDS.get(key, key): value for key, value in event.items()}
        event["event"] = kind
        for key, value in LEGACY_DEFAULTS.get(kind, {}).items():
            event.setdefault(key, value)
    return event


def restart_count_of(event: Mapping[str, object]) -> int | None:
    """The restart count an event names, or None."""
    try:
        return int(str(event.get("restart_count")))
    except (TypeError, ValueError):
        return None


# --- the environment snapshot ----------------------------------------------------------------
# NAME=VALUE entries, each followed by NUL, in name order: read whole by sbatch --export-file,
# and entry by entry by the job side's lr_load_env and by read_snapshot below.


def snapshot_bytes(environ: Mapping[str, str]) -> bytes:
    """Every entry sbatch would pass on."""
    parts = [
        f"{name}={value}\0"
        for name, value in sorted(environ.items())
        if name and "=" not in name and "\0" not in name + value
    ]
    return "".join(parts).encode("utf-8", errors="surrogateescape")


def read_snapshot(data: bytes) -> dict[str, str]:
    env: dict[str, str] = {}
    for entry in data.decode("utf-8", errors="surrogateescape").split("\0"):
        name, sep, value = entry.partition("=")
        if sep:
            env[name] = value
    return env
