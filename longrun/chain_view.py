"""What a chain looks like now, built from its event log (and, for live jobs, one squeue answer).

Finished links need no question to Slurm: each link records why it ended (its verdict), and
the next link records the Slurm end state of its predecessor (its `judged` event). Only jobs
still queued or running are looked up, in one squeue call made by the caller.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import protocol, states
from .chain_record import ChainRecord
from .protocol import Event, as_events
from .slurm_output import QueueRow, hostnames, slurm_epoch


@dataclass
class LinkView:
    """One link: a job that started as part of the chain (a Slurm requeue stays one link)."""

    number: int  # 1-based, as people count (`link 2/5`); "link" in --json
    restart_count: int  # 0-based, as SLURM_LONGRUN_RESTART_COUNT
    job_id: str
    state: str = states.UNKNOWN
    why: str = ""
    verdict: str | None = None
    start_epoch: int | None = None
    end_epoch: int | None = None
    exit_code: int | None = None
    node: str | None = None
    slurm_restarts: int = 0
    preempted: bool = False  # slurmctld showed a PreemptTime, or the link saw one
    # What the chain learned (README: A chain that learns).
    nodes: str | None = None  # the job's nodes, as Slurm lists them
    avoided: bool = False  # later links of the chain avoid (some of) these nodes
    handed_over: str | None = None  # why the link did not run the body, leaving it to the next
    free_links: int = 0  # hand-overs before it (its --free-links)
    memory: str | None = None  # the memory it had: mem=MB or mem-per-cpu=MB
    progress: dict[str, Any] | None = None  # --progress-file at its end: mtime, value, idle

    @property
    def elapsed(self) -> int | None:
        if self.start_epoch is None:
            return None
        end = self.end_epoch if self.end_epoch is not None else int(time.time())
        return max(0, end - self.start_epoch)

    def to_json(self) -> dict[str, Any]:
        data = dict(vars(self))  # every field is a plain value
        data["link"] = data.pop("number")
        data["elapsed_seconds"] = self.elapsed
        data["start"] = iso(self.start_epoch)
        data["end"] = iso(self.end_epoch)
        return data


@dataclass
class ChainView:
    chain_id: str
    job_name: str
    state: str
    reason: str
    max_restarts: int
    links: list[LinkView] = field(default_factory=list)
    current_job: str | None = None
    successor_job: str | None = None
    created: str = ""
    last_change_epoch: int | None = None
    submitted_job: str | None = None
    free_links: int = 0  # links that handed over: not counted against --max-restarts
    avoided_nodes: list[str] = field(default_factory=list)
    # Sites that forbid submission from compute nodes: sbatch's words to a link, and whether
    # the last link's successor waits for a keeper on a login node (`longrun keeper`).
    submit_refused: str | None = None
    awaits_keeper: bool = False
    # Why the chain folder cannot be written to (a full file system), as `longrun status` found.
    folder_problem: str | None = None
    # What sbatch said when it refused the last link's successor for a limit (retried while
    # the link runs), while none is queued.
    successor_refused: str | None = None
    # What the last link waits for now (a `waiting` event not followed by the answer).
    waiting: str | None = None

    @property
    def restart_limit(self) -> int:
        """The restart count of the last link allowed: --max-restarts, plus the free links."""
        return self.max_restarts + self.free_links

    @property
    def total_run_seconds(self) -> int:
        return sum(link.elapsed or 0 for link in self.links)

    @property
    def is_live(self) -> bool:
        return self.state not in states.CHAIN_END_STATES

    def label(self, link: LinkView | int) -> str:
        number = link.number if isinstance(link, LinkView) else link
        return f"link {number}/{self.restart_limit + 1}"

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "job_name": self.job_name,
            "state": self.state,
            "reason": self.reason,
            "max_restarts": self.max_restarts,
            "free_links": self.free_links,
            "avoided_nodes": self.avoided_nodes,
            "submit_refused": self.submit_refused,
            "awaits_keeper": self.awaits_keeper,
            "folder_problem": self.folder_problem,
            "successor_refused": self.successor_refused,
            "waiting": self.waiting,
            "links": [link.to_json() for link in self.links],
            "current_job": self.current_job,
            "successor_job": self.successor_job,
            "created": self.created,
            "last_change": iso(self.last_change_epoch),
            "total_run_seconds": self.total_run_seconds,
        }


@dataclass(frozen=True)
class SlurmEnd:
    """How Slurm says a job ended: its end state and, when known, its start and end times."""

    state: str
    start: str = ""
    end: str = ""


def iso(epoch: int | None) -> str | None:
    return None if epoch is None else time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(epoch))


def link_order(events: Iterable[Mapping[str, Any]]) -> list[str]:
    """The chain's links (their job ids) in the protocol's own order: by restart count, then
    after the job each continues (`previous`), then as the events list them. Never by the
    hosts' clocks, which differ, nor by job ids, which wrap. A job that lost the claim is no
    link; a job that Slurm requeued is one."""
    events = as_events(events)
    lost = {event.job for event in events if event.kind == protocol.CLAIM_LOST}
    counts: dict[str, int] = {}
    previous: dict[str, str] = {}
    for event in events:
        job = event.job
        if event.kind == protocol.LINK_STARTED and job and job not in lost:
            counts.setdefault(job, protocol.restart_count_of(event) or 0)
        if event.kind in (protocol.LINK_STARTED, protocol.CLAIMED) and event.text("previous"):
            previous.setdefault(job, event.text("previous"))
    depths = _depths({job: previous.get(job, "") for job in counts})
    listed = {job: number for number, job in enumerate(counts)}  # (in the events' order)
    return sorted(counts, key=lambda job: (counts[job], depths[job], listed[job]))


def _depths(previous: Mapping[str, str]) -> dict[str, int]:
    """How many links before each link, following the job each continues (a loop, which only
    a damaged log holds, counts as the start)."""
    depths: dict[str, int] = {}
    for start in previous:
        path: dict[str, None] = {}
        job = start
        while job in previous and job not in depths and job not in path:
            path[job] = None
            job = previous[job]
        depth = depths.get(job, -1)
        for job in reversed(path):
            depth += 1
            depths[job] = depth
    return depths


def chain_jobs(events: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every job id the chain has had (links, successors, repairs), in order of appearance."""
    seen: list[str] = []
    for event in events:
        for key in ("job", "successor"):
            value = event.get(key)
            if value and str(value) not in seen:
                seen.append(str(value))
    return seen


def build_view(
    record: ChainRecord,
    events: Sequence[Mapping[str, Any]],
    ended: str | None,
    queue: Mapping[str, QueueRow] | None = None,
    final_states: Mapping[str, SlurmEnd] | None = None,
) -> ChainView:
    """The chain from its metadata, event log, `ended` file and (optionally) live Slurm rows.

    `queue` holds squeue rows of the chain's jobs that Slurm still knows; a row in a final
    state counts as that job's end. `final_states` holds ends learned some other way (sacct).
    A `final_state` event in the log (a settled last link) counts the same.
    """
    events = as_events(events)
    queue = queue or {}
    final_states = {
        **{job: SlurmEnd(row.state, row.start, row.end) for job, row in queue.items()
           if states.is_final(row.state)},
        **(final_states or {}),
    }  # fmt: skip
    links: dict[str, LinkView] = {}
    judged: list[Event] = []  # applied to the links they judge once every link is read
    successor_of: dict[str, str] = {}
    ended_reason = ""
    cancelled_by_us: dict[str, str] = {}  # job -> who cancelled it (`longrun cancel`)
    submitted: str | None = None
    last_epoch: int | None = None
    stopped: dict[str, tuple[str, str]] = {}  # link -> (successor, state): it found it ended
    refused: dict[str, str] = {}  # link -> why the watcher does not repair it again
    stalls: dict[str, str] = {}  # link -> why it queued no successor, in its own words
    handovers: dict[str, str] = {}  # link -> why it left the body to its successor
    progress: dict[str, dict[str, Any]] = {}  # link -> --progress-file as seen after it
    avoided: dict[str, None] = {}  # nodes the chain avoided (in order)
    requested: set[str] = set()  # links that left their successor to a keeper
    submit_refused: str | None = None  # what sbatch said to a link on a compute node
    limited: dict[str, str] = {}  # link -> what sbatch said refusing its successor (a limit)
    waiting: dict[str, str] = {}  # link -> what it waits for (no answer from Slurm yet)

    for event in events:
        kind = event.kind
        job = event.text("job")
        epoch = event.number("epoch")
        if epoch is not None:
            last_epoch = epoch if last_epoch is None else max(last_epoch, epoch)
        if kind == protocol.SUBMITTED and submitted is None:
            submitted = job
        elif kind in protocol.SUCCESSOR_EVENTS:
            successor_of[job or event.text("previous")] = event.text("successor")
            limited.pop(job, None)
        elif kind == protocol.SUCCESSOR_REFUSED:
            limited[job] = event.text("error")
        elif kind == protocol.WAITING:
            waiting[job] = (
                f"job {job} waits up to {event.text('seconds')} s for Slurm's answer about job "
                f"{event.text('about')} ({event.text('question')}): {event.text('reason')}"
            )
        elif kind in (protocol.JUDGED, protocol.VERDICT_RECORDED, protocol.SIGTERM):
            waiting.pop(job, None)
        elif kind == protocol.FINAL_STATE and event.text("state"):
            final_states.setdefault(job, slurm_end_of(event, "state"))
        elif kind == protocol.CHAIN_ENDED:
            ended_reason = event.text("reason")
        elif kind == protocol.SUCCESSOR_STOPPED:
            stop = states.base_state(event.text("state"))
            if stop in states.SUCCESSOR_STOPS:
                stopped[job] = (event.text("successor"), stop)
        elif kind == protocol.REPAIR_REFUSED:
            refused[job] = event.text("reason")
        elif kind == protocol.CHAIN_STALLED:
            stalls[job] = event.text("reason")
        elif kind == protocol.HANDED_OVER:
            handovers[job] = event.text("reason")
        elif kind == protocol.SUCCESSOR_REQUESTED:
            requested.add(job)
        elif kind == protocol.SUBMIT_REFUSED:
            submit_refused = event.text("error") or submit_refused
        elif kind == protocol.NODES_AVOIDED:  # (for a while: the event says until when)
            avoided.update(dict.fromkeys(hostnames(event.text("nodes"))))
        elif kind == protocol.PROGRESS:
            _note_progress(progress, event, job)
        elif kind == protocol.SUCCESSOR_CANCELLED:
            cancelled_by_us[event.text("successor")] = "the link that ended the chain"
        if kind in CANCEL_EVENTS:
            for cancelled in _cancelled_jobs(event):
                cancelled_by_us[cancelled] = event.text("by") or "longrun cancel"
        if not job or kind not in LINK_EVENTS:
            continue
        view = links.get(job)
        if view is None:
            if kind != protocol.LINK_STARTED:
                continue
            count = protocol.restart_count_of(event) or 0
            view = links[job] = LinkView(number=count + 1, restart_count=count, job_id=job)
            view.start_epoch = epoch
        _apply(view, event)
        if kind == protocol.JUDGED:
            judged.append(event)

    for event in judged:  # after the judged link's own events, whatever the clocks say
        _judge(links.get(event.text("previous")), event)
    order = link_order(events)  # (a job that lost the claim is no link)
    for job, view in links.items():
        if view.state in states.OPEN_STATES and job in cancelled_by_us:
            view.state = states.CANCELLED
            view.why = f"cancelled with {cancelled_by_us[job]}"
        if view.state in states.OPEN_STATES and job in final_states:
            end = final_states[job]
            view.state = states.base_state(end.state)
            view.why = view.why or states.STATE_PHRASES.get(view.state, view.state.lower())
            _apply_times(view, end)
        row = queue.get(job)
        if row is not None and row.preempted:
            view.preempted = True
        if row is not None and states.is_active(row.state):
            view.state = states.base_state(row.state)
            _apply_times(view, SlurmEnd(row.state, row.start))
            view.end_epoch = None
            view.why = "" if not states.is_pending(view.state) else f"waiting ({row.reason})"

    for job, view in links.items():
        view.handed_over = handovers.get(job)
        if view.handed_over:
            view.why = f"handed over: {view.handed_over}"
        view.progress = progress.get(job)
        view.avoided = not avoided.keys().isdisjoint(hostnames(view.nodes or ""))
    chain = ChainView(
        chain_id=record.chain_id,
        job_name=record.job_name,
        state="",
        reason=ended_reason,
        max_restarts=record.max_restarts,
        links=[links[job] for job in order],
        created=record.created,
        last_change_epoch=last_epoch,
        submitted_job=submitted,
        # A link knows the hand-overs before it; one that handed over adds itself (its event
        # may be missing if it was killed right after queuing its successor: the next tells).
        free_links=max((links[job].free_links + (job in handovers) for job in order), default=0),
        avoided_nodes=list(avoided),
        submit_refused=submit_refused,
    )
    _chain_state(chain, ended, queue, successor_of, submitted)
    _stop_after_successor(chain, ended, final_states, cancelled_by_us, stopped)
    last = chain.links[-1] if chain.links else None
    chain.awaits_keeper = bool(
        chain.is_live and last and last.job_id in requested and not chain.successor_job
    )
    if chain.is_live and last is not None and not chain.successor_job:
        chain.successor_refused = limited.get(last.job_id)
    if chain.is_live and last is not None and states.is_running(last.state):
        chain.waiting = waiting.get(last.job_id)
    if chain.state == states.CHAIN_STALLED and last is not None:
        for said in (stalls, refused):
            if last.job_id in said:
                chain.reason = f"{chain.reason}; {said[last.job_id]}"
        if chain.awaits_keeper:
            chain.reason += f"; {KEEPER_WANTED}"
    return chain


KEEPER_WANTED = (
    "its successor waits for a keeper on a login node: run `longrun keeper` there, or "
    "`longrun keeper --install` (cron)"
)


# Verdicts with which a link ends the chain itself (and cancels its own successor).
LINK_ENDS_CHAIN = (
    states.VERDICT_COMPLETED, states.VERDICT_FAILED, states.VERDICT_OUT_OF_MEMORY,
    states.VERDICT_ENDED,
)  # fmt: skip
# Verdicts after which Slurm's end state says best why a link ended.
STOPPED_FROM_OUTSIDE = (
    None, states.VERDICT_TERMINATED, states.VERDICT_INTERRUPTED, states.VERDICT_UNDECIDED,
)  # fmt: skip
LINK_EVENTS = frozenset(
    {
        protocol.LINK_STARTED, protocol.BODY_EXITED, protocol.VERDICT_RECORDED, protocol.JUDGED,
        protocol.SIGTERM, protocol.CHAIN_ENDED, protocol.FINAL_STATE,
    }
)  # fmt: skip


def _apply(view: LinkView, event: Event) -> None:
    kind = event["event"]
    epoch = event.number("epoch")
    if kind == protocol.LINK_STARTED:
        view.slurm_restarts = max(view.slurm_restarts, event.number("slurm_restarts") or 0)
        view.node = event.text("node") or view.node
        view.nodes = event.text("nodes") or view.nodes
        view.memory = event.text("memory") or view.memory
        view.free_links = event.number("free_links") or view.free_links
        if view.state in states.OPEN_STATES:
            view.state = states.RUNNING
        return
    if epoch is not None:
        view.end_epoch = epoch
    if kind == protocol.BODY_EXITED:
        view.exit_code = event.number("exit_code")
    elif kind == protocol.VERDICT_RECORDED:
        # A link that saw its own cancel (below) and lived to record its verdict stays so.
        cancel = (view.state, view.why) if view.state == states.CANCELLED else None
        _apply_times(view, slurm_end_of(event, "state"))  # the link's own start, from Slurm
        view.verdict = event.text("verdict") or None
        view.why = event.text("reason")
        view.preempted = view.preempted or event.text("preempted") == "1"
        view.state = states.state_after_verdict(view.verdict, view.exit_code, view.preempted)
        if cancel and view.verdict == states.VERDICT_TERMINATED:
            view.state, view.why = cancel
    elif kind == protocol.SIGTERM:
        view.verdict = event.text("verdict") or states.VERDICT_TERMINATED
        view.preempted = view.preempted or event.text("preempted") == "1"
        view.state = states.UNKNOWN
    elif kind == protocol.JUDGED:
        view.end_epoch = None
        view.state = states.RUNNING
    elif kind == protocol.CHAIN_ENDED and view.verdict == states.VERDICT_TERMINATED:
        # The link saw its own cancel in its SIGTERM handler and ended the chain with it.
        if event.text("state") == states.CHAIN_CANCELLED:
            view.state = states.CANCELLED
            view.why = event.text("reason")
    elif kind == protocol.CHAIN_ENDED and view.verdict is None:
        view.verdict = states.VERDICT_ENDED
        view.state = states.COMPLETED
        view.why = f"ended the chain: {event.text('reason')}"


def _judge(previous: LinkView | None, event: Event) -> None:
    """How the next link found `previous` ended: Slurm's end state and times, which the
    link's own verdict (written before) does not overrule."""
    end = slurm_end_of(event, "slurm_state")
    if previous is not None and end.state in states.FINAL_STATES:
        previous.state = end.state
        if previous.verdict in STOPPED_FROM_OUTSIDE or not previous.why:
            previous.why = states.STATE_PHRASES.get(end.state, end.state.lower())
        _apply_times(previous, end)


CANCEL_EVENTS = frozenset({protocol.CHAIN_ENDED, protocol.JOBS_CANCELLED})


def _note_progress(progress: dict[str, dict[str, Any]], event: Event, job: str) -> None:
    """A `progress` event tells of the link that wrote it (at its end) or of the link before
    (at a link's start: the file as that link left it, even a killed one)."""
    about = job if event.text("at") == protocol.PROGRESS_AT_END else event.text("previous")
    if not about:
        return
    mtime = event.number("mtime")
    progress[about] = {
        "mtime": iso(mtime),
        "mtime_epoch": mtime,
        "value": event.text("value"),
        "idle": event.number("idle"),
    }


def _cancelled_jobs(event: Event) -> list[str]:
    """The jobs `longrun cancel` cancelled, as its events list them."""
    kind = event.kind
    listed = event.get("cancelled") if kind == protocol.CHAIN_ENDED else None
    if kind == protocol.JOBS_CANCELLED:
        listed = event.get("jobs")
    return [job for job in str(listed or "").split(",") if job]


def slurm_end_of(event: Event, key: str) -> SlurmEnd:
    """The Slurm end recorded in an event (judged, final_state or verdict)."""
    return SlurmEnd(
        states.base_state(event.text(key)),
        event.text("start"),
        event.text("end"),
    )


def _apply_times(view: LinkView, end: SlurmEnd) -> None:
    """Slurm's own start and end times replace the link's, whose clock may differ a little."""
    start, stop = slurm_epoch(end.start), slurm_epoch(end.end)
    if start is not None:
        view.start_epoch = start
    if stop is not None:
        view.end_epoch = stop


def _stop_after_successor(
    view: ChainView,
    ended: str | None,
    final_states: Mapping[str, SlurmEnd],
    cancelled_by_us: Mapping[str, str],
    stopped: Mapping[str, tuple[str, str]],
) -> None:
    """A chain whose last link ended while its queued successor had ended before it ran has
    ended too (states.SUCCESSOR_STOPS: cancelled by the user, "stop after this link", or
    removed at its --deadline), as the link found it or as Slurm tells."""
    last = view.links[-1] if view.links else None
    if ended or last is None or view.state != states.CHAIN_STALLED:
        return
    if last.verdict in LINK_ENDS_CHAIN:  # the link itself cancelled its successor
        return
    successor, state = stopped.get(last.job_id, (view.successor_job or "", ""))
    if not state:
        end = final_states.get(successor)
        state = states.base_state(end.state) if end else ""
        if state in states.CANCELLED_STATES and successor in cancelled_by_us:
            return  # cancelled by longrun, not by the user
    if state not in states.SUCCESSOR_STOPS:
        return
    chain_state, phrase = states.SUCCESSOR_STOPS[state]
    view.state = chain_state
    view.reason = (
        f"the successor job {successor} {phrase}: the chain stopped after {view.label(last)}"
    )


def _chain_state(
    view: ChainView,
    ended: str | None,
    queue: Mapping[str, QueueRow],
    successor_of: Mapping[str, str],
    submitted: str | None,
) -> None:
    """Decide the chain's own state: recorded end, else what is queued, else what is missing."""
    last = view.links[-1] if view.links else None
    successor = successor_of.get(last.job_id) if last else None
    view.successor_job = successor
    live = {job: row for job, row in queue.items() if states.is_active(row.state)}
    running = [job for job, row in live.items() if not states.is_pending(row.state)]
    view.current_job = running[-1] if running else (last.job_id if last else submitted)

    if ended:
        view.state = ended
        view.reason = view.reason or ended.lower()
        return
    if running:
        view.state = states.CHAIN_RUNNING
        view.reason = f"{view.label(last) if last else 'link 1'} is running"
        return
    if live:
        pending = next(iter(live))
        view.current_job = pending
        view.state = states.CHAIN_PENDING
        reason = live[pending].reason
        waits = f" ({reason})" if reason and reason not in ("None", "(null)") else ""
        view.reason = f"job {pending} is waiting in the queue{waits}"
        return
    if last is None:
        view.state = states.CHAIN_PENDING if submitted else states.CHAIN_STALLED
        view.reason = "the first link has not started"
        return
    if last.state in states.OPEN_STATES:
        view.state = states.CHAIN_STALLED
        view.reason = f"nothing is queued and how job {last.job_id} ended is not known yet"
    elif last.state in states.CANCELLED_STATES:
        view.state = states.CHAIN_CANCELLED
        view.reason = f"job {last.job_id} was cancelled"
    elif last.restart_count >= view.restart_limit:
        view.state = states.CHAIN_MAX_RESTARTS
        view.reason = f"{view.label(last)} ended {last.state} and no restarts are left"
    else:
        view.state = states.CHAIN_STALLED
        view.reason = f"job {last.job_id} ended {last.state} but no successor is queued"
