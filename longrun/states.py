"""What Slurm's job states and a link's own verdict mean for a chain: the one place that knows.

Words, each with one meaning:
- a link's **verdict** is what the link says about its own end (completed, continue, failed...),
  written to its folder once and recorded with a `verdict` event;
- a link **judges** its predecessor: from the predecessor's verdict and Slurm's end state, the
  first matching rule of RULES gives the **outcome** (run the body, end the chain...);
- **restart_count** counts links from 0, as SLURM_LONGRUN_RESTART_COUNT; people see 1-based
  link numbers ("link 2/5");
- the **successor** is the job a link keeps queued to continue it.

A link's end is seen four ways, each for one reader; each follows from the ones before it:
1. Slurm's **state** (TIMEOUT, FAILED...): what slurmctld or the accounting recorded, facts
   about the allocation that the link cannot know for certain while it runs;
2. the link's **verdict**: what the link itself says as its script exits (it knows the exit
   code, a forwarded signal, a --continue exit), written before Slurm has the last word;
3. the **outcome**: what the next link (or the watcher) does, from verdict x state x
   PreemptTime by the first matching rule of RULES; the only one that decides anything;
4. the **kind** (`link_kind`): how people are told it ended (time limit, preempted, node
   failure...) in `longrun status` and `longrun usage`, from the same facts; it decides nothing.

The job side gets the same rules and state lists rendered into bash (see templates/), so Python
(the watcher, `longrun status`) and the job never disagree about what a state means. Every Slurm
state name longrun uses is spelled here and nowhere else in the package or the templates.
"""

from __future__ import annotations

from dataclasses import dataclass

# Slurm's job states (squeue's and sacct's words).
PENDING = "PENDING"
RUNNING = "RUNNING"
COMPLETING = "COMPLETING"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
TIMEOUT = "TIMEOUT"
PREEMPTED = "PREEMPTED"
NODE_FAIL = "NODE_FAIL"
DEADLINE = "DEADLINE"
OUT_OF_MEMORY = "OUT_OF_MEMORY"
# A link whose state longrun does not know yet (not a Slurm state).
UNKNOWN = "UNKNOWN"
# What a link judges by when Slurm gave no final answer about its predecessor within the wait
# (no answer at all, or a state not final yet): not a Slurm state, and never an end. Kept apart
# from NOT_LEARNED below, where Slurm answered that it no longer knows the job.
NO_ANSWER = "NO_ANSWER"

# End states after which the work is not done and the chain goes on.
CONTINUE_STATES = (TIMEOUT, PREEMPTED, NODE_FAIL, "REVOKED", "BOOT_FAIL")
# Slurm removes a job that cannot end before the user's --deadline: every later link would be
# removed too, so the chain ends.
DEADLINE_STATES = (DEADLINE,)
FAILED_STATES = (FAILED, OUT_OF_MEMORY)
OUT_OF_MEMORY_STATES = (OUT_OF_MEMORY,)
# A link that ended so lost its node(s): the chain avoids them (--avoid-failed-nodes).
NODE_LOST_STATES = (NODE_FAIL, "BOOT_FAIL")
# Why Slurm ends a job that lost a node, as a link's SIGTERM handler sees it (state or reason).
NODE_LOST_CAUSES = (*NODE_LOST_STATES, "NodeDown", "BootFail")
# A link that Slurm ended so (its state, or the reason slurmctld showed it) was not idle by its
# own fault: it does not count against --max-idle-links.
NOT_THE_WORKS_FAULT = (PREEMPTED, *NODE_LOST_STATES, "REVOKED", "NodeDown", "BootFail")
CANCELLED_STATES = (CANCELLED,)
FINAL_STATES = (*CONTINUE_STATES, *DEADLINE_STATES, *FAILED_STATES, *CANCELLED_STATES, COMPLETED)
# States in which a job still holds or waits for an allocation.
ACTIVE_STATES = (
    PENDING, "CONFIGURING", RUNNING, COMPLETING, "SUSPENDED", "REQUEUED",
    "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED",
    "SPECIAL_EXIT",
)  # fmt: skip

# What slurmctld shows of a job it still runs, at the end of a link's script: SIGNALING while
# it delivers a --signal (seen on 22.05.8: an exit 0 just as longrun's own pre-timeout signal
# went out, with a one-minute limit, showed SIGNALING), never a state of a job being ended.
STILL_RUNNING_STATES = (RUNNING, "SIGNALING")

# What slurmctld shows (Reason, or the state) to a batch shell that gets SIGTERM because Slurm
# interrupts the job, as seen on Slurm 22.05; a scancel shows none of them (Reason=None).
TIME_LIMIT_REASON = "TimeLimit"
INTERRUPT_REASONS = (TIME_LIMIT_REASON, "NodeDown", "DeadLine", "BootFail")
INTERRUPT_STATES = CONTINUE_STATES
# What slurmctld shows to the SIGTERM handler of a job that is being cancelled (scancel), with
# Reason=None, no PreemptTime and the job's own Restarts (a requeue shows one more), on 22.05.8
# and 24.11.5; a `scancel --signal=TERM` that does not end the job leaves it RUNNING.
CANCEL_SEEN_STATES = (COMPLETING, CANCELLED)
# A job that Slurm ends for these (its state, or the reason slurmctld shows) is never requeued:
# at --max-restarts, the link's end is the chain's, and the link records it.
NEVER_REQUEUED = (TIMEOUT, TIME_LIMIT_REASON)
# Links whose end is not settled yet: Slurm may still tell more.
UNSETTLED_STATES = (UNKNOWN, RUNNING, PENDING, COMPLETING)
# Links that have started and not ended, as far as their own events tell.
OPEN_STATES = (UNKNOWN, RUNNING)

# How a Slurm end state reads in one line.
STATE_PHRASES = {
    TIMEOUT: "reached its time limit",
    PREEMPTED: "was preempted",
    NODE_FAIL: "lost its node",
    DEADLINE: "reached its deadline",
    "REVOKED": "was revoked (federation)",
    "BOOT_FAIL": "failed to boot its node",
    CANCELLED: "was cancelled",
    OUT_OF_MEMORY: "ran out of memory",
    FAILED: "failed",
    COMPLETED: "completed",
}

# A link's verdict about itself, written to its folder before it ends; once written as final it
# is never changed.
VERDICT_COMPLETED = "completed"  # the body exited 0 on its own: the work is done
VERDICT_CONTINUE = "continue"  # the body asked for (or needs) a fresh allocation
VERDICT_FAILED = "failed"  # the body exited non-zero on its own
VERDICT_OUT_OF_MEMORY = "out_of_memory"  # it failed, and the kernel or Slurm saw it run out
VERDICT_INTERRUPTED = "interrupted"  # SIGTERM while Slurm showed a time limit, preemption...
VERDICT_TERMINATED = "terminated"  # SIGTERM from outside with no sign of why (a cancel?)
VERDICT_ENDED = "ended"  # the link ended the chain without running the body
# The script failed while slurmctld did not answer whether Slurm was ending the job: the next
# link judges it from Slurm's record (no answer decides nothing): a failure, unless Slurm
# interrupted the job (a time limit, preemption, a lost node).
VERDICT_UNDECIDED = "undecided"
VERDICTS = (
    VERDICT_COMPLETED, VERDICT_CONTINUE, VERDICT_FAILED, VERDICT_OUT_OF_MEMORY,
    VERDICT_INTERRUPTED, VERDICT_TERMINATED, VERDICT_ENDED, VERDICT_UNDECIDED,
)  # fmt: skip


# Chain states, as `longrun status` reports them.
CHAIN_PENDING = PENDING
CHAIN_RUNNING = RUNNING
CHAIN_COMPLETED = COMPLETED
CHAIN_FAILED = FAILED
CHAIN_CANCELLED = CANCELLED
CHAIN_MAX_RESTARTS = "MAX_RESTARTS"
CHAIN_DEADLINE = DEADLINE
CHAIN_STALLED = "STALLED"
CHAIN_NO_PROGRESS = "NO_PROGRESS"  # --max-idle-links links in a row made no progress
CHAIN_TIME_BUDGET = "TIME_BUDGET"  # the links' run times used up --total-time
# A chain whose folder cannot be read (a damaged or hostile file in it): `longrun list` shows
# it in this state, beside the others.
CHAIN_DAMAGED = "DAMAGED"
CHAIN_END_STATES = (
    CHAIN_COMPLETED, CHAIN_FAILED, CHAIN_CANCELLED, CHAIN_MAX_RESTARTS, CHAIN_DEADLINE,
    CHAIN_NO_PROGRESS, CHAIN_TIME_BUDGET,
)  # fmt: skip

# A successor that ended before it ran, as the link that queued it finds it: the chain stops
# after this link, in the chain state given. A user cancelled it ("stop after this link"), or
# Slurm removed it because it could not end before --deadline (a later link would start later).
SUCCESSOR_STOPS = {
    CANCELLED: (CHAIN_CANCELLED, "was cancelled"),
    DEADLINE: (CHAIN_DEADLINE, "could not end before the --deadline"),
}

# Outcomes of judging a predecessor.
RUN = "run"  # run the body
RUN_WARN = "run-warn"  # run the body, but record that the predecessor's end is unknown
RETRY_OR_FAIL = "retry-or-fail"  # run again if --retry-failed has retries left, else FAILED
END_AS_RECORDED = "end-as-recorded"  # the predecessor ended the chain; keep its end state
# The predecessor ran out of memory: with --grow-mem-on-oom, hand over to a successor that asks
# for more; without it, as RETRY_OR_FAIL.
OUT_OF_MEMORY_OUTCOME = "out-of-memory"
END_PREFIX = "end:"  # end the chain in the state that follows
END_COMPLETED = END_PREFIX + CHAIN_COMPLETED
END_FAILED = END_PREFIX + CHAIN_FAILED
END_CANCELLED = END_PREFIX + CHAIN_CANCELLED
END_DEADLINE = END_PREFIX + CHAIN_DEADLINE
RUN_OUTCOMES = (RUN, RUN_WARN)

ANY = ("*",)
NOT_LEARNED = ("",)  # Slurm answered that it no longer knows the job (not: no answer)


@dataclass(frozen=True)
class Rule:
    """If the verdict and Slurm's state match (and PreemptTime is as given), the outcome holds."""

    verdict: str  # a verdict, "" for none recorded, or "*"
    states: tuple[str, ...]  # Slurm end states, NOT_LEARNED, or ANY
    preempted: bool | None  # True: PreemptTime shown; False: not shown; None: either
    outcome: str
    why: str


RULES: tuple[Rule, ...] = (
    Rule(VERDICT_COMPLETED, ANY, None, END_COMPLETED, "the previous link finished the work"),
    Rule(VERDICT_ENDED, ANY, None, END_AS_RECORDED, "the previous link ended the chain"),
    # A cancel wins over what the link said before it (a continue, a failure to retry).
    Rule("*", CANCELLED_STATES, None, END_CANCELLED, "the previous link was cancelled"),
    Rule(VERDICT_OUT_OF_MEMORY, ANY, None, OUT_OF_MEMORY_OUTCOME, "the previous link ran out of memory"),  # noqa: E501
    Rule(VERDICT_FAILED, OUT_OF_MEMORY_STATES, None, OUT_OF_MEMORY_OUTCOME, "the previous link ran out of memory"),  # noqa: E501
    Rule("", OUT_OF_MEMORY_STATES, False, OUT_OF_MEMORY_OUTCOME, "the previous link ran out of memory"),  # noqa: E501
    Rule(VERDICT_FAILED, ANY, None, RETRY_OR_FAIL, "the work of the previous link failed"),
    Rule(VERDICT_UNDECIDED, OUT_OF_MEMORY_STATES, False, OUT_OF_MEMORY_OUTCOME, "the previous link ran out of memory"),  # noqa: E501
    Rule(VERDICT_UNDECIDED, (FAILED,), False, RETRY_OR_FAIL, "the work of the previous link failed"),  # noqa: E501
    Rule(VERDICT_UNDECIDED, (*FAILED_STATES, *CONTINUE_STATES), None, RUN, "the previous link was interrupted by Slurm"),  # noqa: E501
    Rule("*", DEADLINE_STATES, None, END_DEADLINE, "the previous link reached its --deadline"),
    Rule(VERDICT_CONTINUE, ANY, None, RUN, "the previous link asked to continue"),
    Rule(VERDICT_INTERRUPTED, ANY, None, RUN, "the previous link was interrupted by Slurm"),
    Rule(VERDICT_TERMINATED, NOT_LEARNED, False, END_CANCELLED, "the previous link was stopped from outside with no sign of a time limit, preemption or node failure, and Slurm answered that it no longer knows how it ended: taken as a cancel"),  # noqa: E501
    Rule(VERDICT_TERMINATED, ANY, None, RUN, "the previous link was stopped from outside"),
    Rule("", CONTINUE_STATES, None, RUN, "the previous link was interrupted by Slurm"),
    Rule("", (*FAILED_STATES, COMPLETED), True, RUN, "the previous link was preempted"),
    Rule("", FAILED_STATES, False, END_FAILED, "the previous link failed"),
    # A link exits 0 only after writing its verdict: without one, its folder could not be
    # written (a full disk) and the work may not be done; the script runs (and finds out).
    Rule("", (COMPLETED,), False, RUN_WARN, "the previous link exited 0 but left no verdict (could its folder not be written?): running"),  # noqa: E501
    Rule("*", ANY, None, RUN_WARN, "how the previous link ended could not be determined"),
)  # fmt: skip


def judge(verdict: str, state: str, preempted: bool) -> Rule:
    """The first rule that matches a predecessor's verdict ("" if none), state and PreemptTime."""
    for rule in RULES:
        if rule.verdict not in ("*", verdict):
            continue
        if rule.states != ANY and state not in rule.states:
            continue
        if rule.preempted is not None and rule.preempted != preempted:
            continue
        return rule
    raise AssertionError("the last rule matches everything")


def base_state(raw: str) -> str:
    """`CANCELLED by 1000` -> `CANCELLED`; `COMPLETED+` -> `COMPLETED`."""
    word = raw.strip().split(" ", 1)[0] if raw.strip() else ""
    return word.rstrip("+")


def is_final(state: str) -> bool:
    return base_state(state) in FINAL_STATES


def is_active(state: str) -> bool:
    return base_state(state) in ACTIVE_STATES


def state_after_verdict(verdict: str | None, exit_code: int | None, preempted: bool) -> str:
    """The Slurm state a link ends in after its own verdict (the link's exit code decides):
    a preempted link exits with its script's code, every other continuing link exits 0."""
    if verdict == VERDICT_COMPLETED:
        return COMPLETED
    if verdict in (VERDICT_FAILED, VERDICT_OUT_OF_MEMORY):
        return FAILED
    if verdict == VERDICT_CONTINUE:
        return FAILED if preempted and exit_code not in (None, 0) else COMPLETED
    return UNKNOWN


def is_pending(state: str) -> bool:
    return base_state(state) == PENDING


def is_running(state: str) -> bool:
    return base_state(state) == RUNNING


# How a link ended, in the words people tell links apart by (`longrun status --timeline`).
KIND_COMPLETED = "completed"  # the work is done
KIND_CONTINUED = "continued"  # the script asked for a new allocation (continue exit code)
KIND_TIME_LIMIT = "time limit"
KIND_PREEMPTED = "preempted"
KIND_NODE_FAILURE = "node failure"
KIND_FAILED = "failed"
KIND_CANCELLED = "cancelled"
KIND_RUNNING = "running"
KIND_UNKNOWN = "unknown"
LINK_KINDS = (
    KIND_COMPLETED, KIND_CONTINUED, KIND_TIME_LIMIT, KIND_PREEMPTED, KIND_NODE_FAILURE,
    KIND_FAILED, KIND_CANCELLED, KIND_RUNNING, KIND_UNKNOWN,
)  # fmt: skip


# Links that Slurm ended before their script did: their work since the last checkpoint is lost.
INTERRUPTED_KINDS = frozenset({KIND_TIME_LIMIT, KIND_PREEMPTED, KIND_NODE_FAILURE})


def link_kind(state: str, verdict: str | None, preempted: bool) -> str:
    """How a link ended (or that it runs), from Slurm's state, its own verdict and whether
    slurmctld showed a PreemptTime (a preempted job may be recorded FAILED)."""
    base = base_state(state)
    if base in (RUNNING, COMPLETING):
        return KIND_RUNNING
    if preempted or base == PREEMPTED:
        return KIND_PREEMPTED
    if base in (TIMEOUT, DEADLINE):
        return KIND_TIME_LIMIT
    if base in (NODE_FAIL, "BOOT_FAIL"):
        return KIND_NODE_FAILURE
    if base in CANCELLED_STATES:
        return KIND_CANCELLED
    if base in FAILED_STATES:
        return KIND_FAILED
    if base == COMPLETED:
        return KIND_CONTINUED if verdict == VERDICT_CONTINUE else KIND_COMPLETED
    return KIND_UNKNOWN
