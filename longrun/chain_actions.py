"""Actions on a whole chain, under its lock where two actors could collide: settle its last
link from sacct, record its end, cancel it, repair a missing successor, enforce --max-restarts.

Reading a chain is longrun/chain_reading.py; every Slurm command comes from longrun.slurm; what
states mean is longrun.states'.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import files, log, protocol, slurm, states
from .array_view import ArrayView, build_array_view
from .arrays import element_key, resolve_pattern
from .chain_reading import chain_or_element, live_array_view, live_view
from .chain_record import ChainRecord
from .chain_store import ChainFolder, StateDir
from .chain_view import ChainView, LinkView, SlurmEnd, chain_jobs, link_order
from .environment import ExportMode, successor_arguments, successor_environment
from .errors import LongrunError, RepairRefused, StateError, UsageError
from .protocol import Event, as_events
from .slurm_output import QueueRow
from .successor_request import read_request, submit_folder, submit_request
from .view_cache import cached_or_read, cached_view, view_data


def settle_from_accounting(folder: ChainFolder, view: ChainView) -> bool | None:
    """For a chain (or an array element) with nothing queued: learn once from sacct how the
    last link (and its successor, if one was queued) ended, and record it. True if it did,
    None if sacct did not answer (then nothing may be decided from its silence)."""
    last = view.links[-1] if view.links else None
    if last is None:
        return False
    wanted = [last.job_id] if last.state in states.UNSETTLED_STATES else []
    wanted += [view.successor_job] if view.successor_job else []
    rows = slurm.accounting_rows(wanted, folder.read_meta().cluster_args())
    if rows is None:
        return None
    found = {job: SlurmEnd(row.state, row.start, row.end) for job, row in rows.items()}
    settled = False
    for job in wanted:
        end = found.get(job)
        if end and states.is_final(end.state):
            folder.append_event(
                protocol.FINAL_STATE, job=job, state=end.state, start=end.start, end=end.end,
                source="sacct",
            )  # fmt: skip
            settled = True
    return settled


def record_end(folder: ChainFolder, view: ChainView, by: str, element: int | None = None) -> None:
    """Write the chain's (or an element's) end when no link could (e.g. the last link was
    killed by its time limit)."""
    if view.state in states.CHAIN_END_STATES and folder.set_ended(view.state, element):
        folder.append_event(
            protocol.CHAIN_ENDED, state=view.state, reason=view.reason, by=by, element=element
        )


@contextlib.contextmanager
def chain_lock(folder: ChainFolder) -> Iterator[None]:
    """One actor at a time may submit or cancel jobs of a chain (watchers, `longrun cancel`)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
    try:
        fd = os.open(folder.path / protocol.LOCK, flags, 0o600)
    except OSError as exc:  # a symbolic link put in its place is never written through
        raise StateError(f"cannot open {folder.path / protocol.LOCK}: {exc.strerror}") from exc
    with os.fdopen(fd, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class CancelResult:
    cancelled: list[str]
    already_ended: str | None


def cancel_chain(folder: ChainFolder, element: int | None = None) -> CancelResult:
    """Cancel the successor first (so nothing follows), then the running link; record the end.
    For an array: every element, or one.

    Idempotent, and safe in any state. The end is recorded before the first scancel, so a link
    whose pre-timeout check runs meanwhile does not queue a new successor; the queue is checked
    again afterwards all the same.
    """
    with chain_lock(folder):
        record = folder.read_meta()
        if element is not None and element not in (record.array.indices if record.array else ()):
            raise UsageError(
                f"chain {folder.chain_id} has no array element {element}",
                "`longrun status CHAIN` lists the elements.",
            )
        recorded = folder.ended() if element is None else folder.element_ends().get(element)
        previous = None if folder.set_ended(states.CHAIN_CANCELLED, element) else recorded
        clusters = record.cluster_args()
        cancelled: list[str] = []
        for _ in range(3):
            jobs = _jobs_of(folder, record, element)
            rows = {j: r for j, r in slurm.queue_rows(jobs, clusters).items() if j in jobs}
            queued = {j: r for j, r in rows.items() if states.is_active(r.state)}
            queued = {j: r for j, r in queued.items() if j not in cancelled}
            if not queued:
                break
            tasks = {j for j, r in queued.items() if r.task_key and element is None}
            if tasks:  # every task of the array at once, by the array's id
                array_job = queued[next(iter(tasks))].array_job
                slurm.scancel(array_job, clusters)
                cancelled.append(array_job)
                queued = {j: r for j, r in queued.items() if j not in tasks}
                cancelled.extend(tasks)
            for job in sorted(queued, key=lambda j: not states.is_pending(queued[j].state)):
                slurm.scancel(job, clusters)
                cancelled.append(job)
        if previous is None:
            folder.append_event(
                protocol.CHAIN_ENDED, state=states.CHAIN_CANCELLED,
                reason="cancelled with longrun cancel", by="longrun cancel",
                cancelled=",".join(cancelled), element=element,
            )  # fmt: skip
        elif cancelled:
            folder.append_event(
                protocol.JOBS_CANCELLED, jobs=",".join(cancelled), by="longrun cancel",
                element=element,
            )  # fmt: skip
        return CancelResult(cancelled, previous)


def _jobs_of(folder: ChainFolder, record: ChainRecord, element: int | None) -> set[str]:
    """The jobs to cancel: the chain's, or one array element's (its task as ARRAYJOB_TASK,
    never the array's own id, which would name every task)."""
    events = folder.read_events()
    if not record.is_array:
        return set(chain_jobs(events))
    view = build_array_view(record, events, None, {})
    if element is None:  # the array's own id names every task, pending ones too
        return {view.array_job, *(f"{view.array_job}_{i}" for i in view.elements)} | {
            job for job in chain_jobs(events) if job != view.array_job
        }
    return chain_or_element(folder, record, events, element, None)[1]


def needs_repair(view: ChainView, queue: Mapping[str, QueueRow], retries_left: bool) -> bool:
    """The last link ended in a way that continues the chain, restarts remain, nothing of the
    chain is queued (`queue`: the chain's own jobs as squeue shows them).

    What an end means is decided by the rule table (longrun.states), as on the job side.
    """
    if view.state != states.CHAIN_STALLED or not view.links:
        return False
    if any(states.is_active(row.state) for row in queue.values()):
        return False
    last = view.links[-1]
    if last.restart_count >= view.restart_limit:
        return False
    state = last.state if states.is_final(last.state) else ""
    verdict = last.verdict or ""
    outcome = states.judge(verdict, state, last.preempted).outcome
    if outcome in (states.RETRY_OR_FAIL, states.OUT_OF_MEMORY_OUTCOME):
        # (with --grow-mem-on-oom, `retries_left` is True: the next link grows the memory)
        return retries_left
    return outcome in states.RUN_OUTCOMES and (state != "" or verdict != "")


def repair(folder: ChainFolder, state_dir: StateDir, element: int | None = None) -> str | None:
    """Submit the missing successor with the job side's rules; None if none is missing.

    Holds the chain lock and looks again under it, so two watchers never both submit; a
    successor on the link's own record or tagged for the next link in the queue counts as
    there, and only a definite answer from Slurm counts as missing. For an array: one element.
    """
    with chain_lock(folder):
        record = folder.read_meta()
        clusters = record.cluster_args()
        events = folder.read_events()
        view, jobs = chain_or_element(folder, record, events, element, None)
        last = view.links[-1] if view.links else None
        recorded = folder.successor(last.job_id) if last else None
        jobs |= {recorded} if recorded else set()
        rows = slurm.queue_rows(jobs, clusters)
        view, _ = chain_or_element(folder, record, events, element, rows)
        own = {job: row for job, row in rows.items() if job in jobs}
        retries = _retries_of(events, last.job_id) if last else 0
        retries_left = record.grows_memory or retries < record.retry_failed
        if last is None or not needs_repair(view, own, retries_left):
            return None
        refuse_another_repair(events, last.job_id)
        with folder.held() as handle:  # checked again now, and read from what was checked
            record = folder.read_meta(handle)
            snapshot = folder.read_env(handle)
        next_count = last.restart_count + 1
        tag = protocol.link_tag(element_key(folder.chain_id, element), next_count + 1)
        found = slurm.tagged_jobs(tag, clusters)
        if found:
            folder.append_event(
                protocol.SUCCESSOR_FOUND, job=last.job_id, successor=found[0], by="watcher"
            )
            return None
        request = read_request(folder, last.job_id) or read_request(
            folder, last.job_id, protocol.COMMAND
        )
        if request is not None and request.carries(tag):
            # The link built its successor itself (and left it to a keeper, or every sbatch
            # failed): submit exactly that, without the wait on the link, which has ended.
            arguments = list(request.without_dependency())
            job_id = submit_request(request, arguments)
            return _repaired(folder, state_dir, last, job_id, arguments, "link")
        # The link was killed before it built its successor: the same, from what its events
        # say (tests/unit/test_successor_twins.py holds both builders to one table of cases).
        comment = f"--comment={record.comment_prefix}{tag}"
        how = ExportMode(record.export_mode, record.export_names)
        array_element = _started_field(events, last.job_id, "array") if element is not None else ""
        # (an array element: its own links' growth only)
        memory = _grown_memory([e for e in events if element is None or e.job in jobs])
        arguments = [
            "--parsable", *record.successor_options,
            *([f"--{memory}M"] if memory else []),
            *_element_options(record, array_element), comment,
            *successor_arguments(how, str(folder.env_file)),
            *record.successor_components, str(folder.link_script),
            *protocol.link_arguments(
                next_count, _initial_job(view), last.job_id, retries, array_element,
                free_links=view.free_links, memory=memory, submit_from=_submit_from(record, events),
            ),
        ]  # fmt: skip
        env = successor_environment(snapshot, how, os.environ.get("SLURM_CONF"))
        job_id = slurm.sbatch(arguments, cwd=submit_folder(record.submit_dir), env=env, timeout=60)
        return _repaired(folder, state_dir, last, job_id, arguments, "watcher")


def _repaired(
    folder: ChainFolder,
    state_dir: StateDir,
    last: LinkView,
    job_id: str,
    arguments: list[str],
    built_by: str,
) -> str:
    state_dir.record_job(job_id, folder.chain_id)
    folder.append_event(
        protocol.REPAIRED, job=last.job_id, restart_count=last.restart_count,
        successor=job_id, command=shlex.join(["sbatch", *arguments]), built_by=built_by,
    )  # fmt: skip
    return job_id


def _submit_from(record: ChainRecord, events: Sequence[Event]) -> str:
    """login once the chain was submitted so, or a link found its node may not submit."""
    if any(event.kind == protocol.SUBMIT_REFUSED for event in events):
        return protocol.SUBMIT_FROM_LOGIN
    return record.submit_from or protocol.SUBMIT_FROM_COMPUTE


MAX_REPAIRS = 3  # of one link; a folder that always looks broken cannot make more


def refuse_another_repair(events: Sequence[Mapping[str, Any]], job_id: str) -> None:
    """A link is repaired again only while every successor a repair queued for it ended
    before it started (a node failure before the start, say), and MAX_REPAIRS times at most:
    a repaired successor that ran and left the chain stalled again is never replaced."""
    events = as_events(events)
    repairs = [
        event.text("successor")
        for event in events
        if event.kind == protocol.REPAIRED and event.job == job_id
    ]
    started = {e.job for e in events if e.kind == protocol.LINK_STARTED}
    ran = [job for job in repairs if job in started]
    if ran or len(repairs) >= MAX_REPAIRS:
        why = f"job {ran[0]}, queued by a repair, started" if ran else f"{len(repairs)} repairs"
        raise repair_refused(job_id, why)


def repair_refused(job_id: str, why: str) -> RepairRefused:
    return RepairRefused(
        f"job {job_id} ended with no successor queued, and is not repaired again ({why}): "
        "the chain stays STALLED",
        f"Look at the jobs' output and `longrun status {job_id}`; resubmit to go on.",
    )


def _grown_memory(events: Sequence[Event]) -> str:
    """The memory the chain asks for since --grow-mem-on-oom last grew it (mem=MB or
    mem-per-cpu=MB, as --memory carries it), or "" when it never grew. Last: by the order of
    the links that grew it, not by their hosts' clocks."""
    grown = [
        event for event in events
        if event.kind == protocol.MEMORY_GROWN and event.text("option") in ("mem", "mem-per-cpu")
        and event.text("after").isdigit() and len(event.text("after")) < 13
    ]  # fmt: skip
    if not grown:
        return ""
    rank = {job: number for number, job in enumerate(link_order(events))}
    _, last = max(enumerate(grown), key=lambda item: (rank.get(item[1].job, -1), item[0]))
    return f"{last.text('option')}={last.text('after')}"


def _started_field(events: Sequence[Event], job_id: str, key: str) -> str:
    """A field of a link's link_started event: the array element it said it belonged to
    (--array-element's value), the memory it had (--memory's value)."""
    for event in events:
        if event.kind == protocol.LINK_STARTED and event.job == job_id:
            return event.text(key)
    return ""


def _element_options(record: ChainRecord, array_element: str) -> list[str]:
    """An element's later links write the files its first link wrote (see lr_element_options)."""
    if not array_element:
        return []
    array_job, element = array_element.split(",")[:2]
    array = record.array
    if array is None:
        return []
    options = [f"--output={resolve_pattern(array.output, array_job, int(element))}"]
    if array.error:
        options.append(f"--error={resolve_pattern(array.error, array_job, int(element))}")
    return options


def _initial_job(view: ChainView) -> str:
    return view.links[0].job_id if view.links else (view.submitted_job or "")


def _retries_of(events: Sequence[Event], job_id: str) -> int:
    """How many --retry-failed retries the chain had used when this link ended: the link's own
    retry (its judging took one) if it made one, else what it started with."""
    for kind, key in ((protocol.RETRY, "attempt"), (protocol.LINK_STARTED, "retries")):
        for event in reversed(events):
            if event.kind == kind and event.job == job_id:
                return max(0, event.number(key) or 0)
    return 0


def enforce_max_restarts(folder: ChainFolder, view: ChainView) -> list[str]:
    """Cancel any link started beyond --max-restarts (the job side never submits one)."""
    over = [
        link.job_id
        for link in view.links
        if link.restart_count > view.restart_limit and link.state in states.UNSETTLED_STATES
    ]
    clusters = folder.read_meta().cluster_args()
    for job in over:
        try:
            slurm.scancel(job, clusters)
            folder.append_event(
                protocol.CANCELLED_BEYOND_MAX, job=job, max_restarts=view.max_restarts
            )
        except LongrunError as exc:
            log.warning("could not cancel job {} beyond --max-restarts: {}", job, exc)
    return over


def status_view(folder: ChainFolder, element: int | None = None) -> ChainView | ArrayView:
    """The chain for `longrun status`: live jobs from squeue; the last link settled if needed.
    An array chain: all its elements, or one. A chain folder that cannot be written to (a full
    file system) is only read, and the view says why."""
    problem = files.space_problem(folder.path)
    if folder.read_meta().is_array:
        array = live_array_view(folder)
        if problem:
            array.folder_problem = problem
        else:
            array = _settled_array(folder, array, by="longrun status")
        if element is None:
            return array
        if element not in array.elements:
            raise UsageError(
                f"chain {folder.chain_id} has no array element {element}",
                f"`longrun status {folder.chain_id}` lists the elements.",
            )
        array.elements[element].folder_problem = problem
        return array.elements[element]
    if element is not None:
        raise UsageError(f"chain {folder.chain_id} is not an array: it has no --element")
    if problem:  # nothing can be written there: read only, and say so
        view = live_view(folder)
        view.folder_problem = problem
        return view
    cached = cached_view(folder)
    if cached is not None:
        return cached

    def read() -> ChainView:
        view = live_view(folder)
        if view.state == states.CHAIN_STALLED and settle_from_accounting(folder, view):
            view = live_view(folder, ask_slurm=False)
        record_end(folder, view, by="longrun status")
        return view

    return cached_or_read(folder, protocol.KEPT_VIEW, read, view_data)


def _settled_array(folder: ChainFolder, view: ArrayView, by: str) -> ArrayView:
    """Settle the stalled elements from sacct (once each) and record the ends found."""
    stalled = [v for v in view.elements.values() if v.state == states.CHAIN_STALLED]
    settled = [settle_from_accounting(folder, element) for element in stalled]
    if any(settled):
        view = live_array_view(folder, ask_slurm=False)
    for index, element in view.elements.items():
        record_end(folder, element, by=by, element=index)
    return view
