"""What an array chain looks like now: one chain view per element, from the array's events.

An element's events are those of its links (each link says its element when it starts) and of
the successors they queued; the submission's events belong to every element. Built without
Slurm, like longrun.chain_view; the caller may add one squeue answer for the live elements.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from . import protocol, states
from .arrays import element_key
from .chain_record import ChainRecord
from .chain_store import digits
from .chain_view import ChainView, build_view, chain_jobs, iso
from .protocol import Event, as_events
from .slurm_output import QueueRow

# The state of an ended array whose elements did not all complete: the first that applies.
END_PRIORITY = (
    states.CHAIN_FAILED, states.CHAIN_CANCELLED, states.CHAIN_NO_PROGRESS,
    states.CHAIN_TIME_BUDGET, states.CHAIN_MAX_RESTARTS, states.CHAIN_DEADLINE,
)  # fmt: skip
REMOVED_BEFORE_START = "removed from the queue before its first link started"


@dataclass
class ArrayView:
    chain_id: str
    job_name: str
    array_job: str
    state: str
    reason: str
    elements: dict[int, ChainView] = field(default_factory=dict)
    created: str = ""
    last_change_epoch: int | None = None
    folder_problem: str | None = None  # as ChainView.folder_problem

    @property
    def is_live(self) -> bool:
        return self.state not in states.CHAIN_END_STATES

    @property
    def counts(self) -> dict[str, int]:
        """Elements by state, most common first."""
        return dict(Counter(view.state for view in self.elements.values()).most_common())

    @property
    def links(self) -> int:
        return sum(len(view.links) for view in self.elements.values())

    def counts_text(self) -> str:
        return ", ".join(f"{state} {count}" for state, count in self.counts.items())

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "job_name": self.job_name,
            "array_job": self.array_job,
            "state": self.state,
            "reason": self.reason,
            "elements_by_state": self.counts,
            "elements": [
                {"element": index, **element_row(view)} for index, view in self.elements.items()
            ],
            "created": self.created,
            "last_change": iso(self.last_change_epoch),
            "folder_problem": self.folder_problem,
        }


def element_row(view: ChainView) -> dict[str, Any]:
    """One element as `longrun status ARRAY` lists it."""
    return {
        "links": len(view.links),
        "state": view.state,
        "reason": view.reason,
        "current_job": view.current_job,
        "last_change": iso(view.last_change_epoch),
        "last_change_epoch": view.last_change_epoch,
    }


def elements_of(view: ChainView | ArrayView) -> dict[int | None, ChainView]:
    """One chain model: an array's elements by index, a plain chain as its one element None."""
    if isinstance(view, ArrayView):
        return {index: element for index, element in view.elements.items()}
    return {None: view}


def elements_of_jobs(events: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Which element each job of the array belongs to: a link says so when it starts, and the
    successor it queues (or a repair queues for it) belongs to the same element."""
    events = as_events(events)
    jobs: dict[str, int] = {}
    for event in events:
        element = _element_field(event)
        if event.kind == protocol.LINK_STARTED and element is not None:
            jobs[event.job] = element
    for event in events:
        job, successor = event.job, event.text("successor")
        if successor and job in jobs:
            jobs.setdefault(str(successor), jobs[job])
    return jobs


def split_events(
    events: Sequence[Mapping[str, Any]], indices: Sequence[int]
) -> dict[int, list[Event]]:
    """Each element's events, oldest first; the submission's go to every element, with the
    element's own name for the submitted job (ARRAYJOB_TASK)."""
    events = as_events(events)
    jobs = elements_of_jobs(events)
    split: dict[int, list[Event]] = {index: [] for index in indices}
    for event in events:
        kind = event.kind
        element = _element_field(event)
        if element is None and kind not in (protocol.SUBMITTING, protocol.SUBMITTED):
            element = jobs.get(event.job or event.text("previous"))
        if element is not None:
            if element in split:
                split[element].append(event)
            continue
        for index, own in split.items():
            if kind == protocol.SUBMITTED:
                own.append(Event({**event, "job": f"{event.job}_{index}"}))
            else:
                own.append(event)
    return split


def build_array_view(
    record: ChainRecord,
    events: Sequence[Mapping[str, Any]],
    ended: str | None,
    element_ends: Mapping[int, str],
    queue: Mapping[str, QueueRow] | None = None,
) -> ArrayView:
    """The array from its metadata, events and recorded ends. `queue`: one squeue answer for
    the array and its live successors, or None when Slurm was not asked (then an element that
    never started counts as waiting)."""
    events = as_events(events)
    indices = list(record.array.indices) if record.array else []
    array_job = next((e.job for e in events if e.kind == protocol.SUBMITTED), "")
    elements = {}
    for index, own in split_events(events, indices).items():
        element_record = replace(record, chain_id=element_key(record.chain_id, index))
        task = f"{array_job}_{index}"
        element = build_view(
            element_record, own, element_ends.get(index) or ended, _own_rows(queue, own, task)
        )
        if queue is not None and not element.links and element.is_live:
            _ended_before_start(element, queue.get(task))
        elements[index] = element
    last = [v.last_change_epoch for v in elements.values() if v.last_change_epoch is not None]
    view = ArrayView(
        chain_id=record.chain_id,
        job_name=record.job_name,
        array_job=array_job,
        state="",
        reason="",
        elements=elements,
        created=record.created,
        last_change_epoch=max(last) if last else None,
    )
    view.state = array_state([v.state for v in elements.values()])
    view.reason = f"elements: {view.counts_text()}"
    return view


def _ended_before_start(element: ChainView, row: QueueRow | None) -> None:
    """An element whose first link never started, and that Slurm no longer queues: removed
    (scancel of a waiting task), or ended as Slurm says."""
    if row is None:
        element.state, element.reason = states.CHAIN_CANCELLED, REMOVED_BEFORE_START
    elif states.is_final(row.state):
        state = states.base_state(row.state)
        ends = {states.CANCELLED: states.CHAIN_CANCELLED, states.DEADLINE: states.CHAIN_DEADLINE}
        element.state = ends.get(state, states.CHAIN_FAILED)
        element.reason = f"ended {state} before its first link started"


def _own_rows(
    queue: Mapping[str, QueueRow] | None, events: Sequence[Event], task: str
) -> dict[str, QueueRow] | None:
    """The rows of one element's jobs (its task, its links, their successors)."""
    if queue is None:
        return None
    jobs = {task, *chain_jobs(events)}
    return {job: row for job, row in queue.items() if job in jobs}


def array_state(element_states: Sequence[str]) -> str:
    """Running while any element runs; ended when all have: completed only if all did."""
    for live in (states.CHAIN_RUNNING, states.CHAIN_PENDING, states.CHAIN_STALLED):
        if live in element_states:
            return live
    for end in END_PRIORITY:
        if end in element_states:
            return end
    return states.CHAIN_COMPLETED


def _element_field(event: Event) -> int | None:
    return digits(str(event.get("element") if event.get("element") is not None else ""))
