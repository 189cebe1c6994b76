"""Reading chains: what a chain (or an array, or every chain) is now, from its folder and at
most one squeue call. Nothing here writes; acting on a chain is longrun/chain_actions.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from . import log, slurm, states
from .array_view import ArrayView, build_array_view, elements_of_jobs
from .chain_record import ChainRecord
from .chain_store import ChainFolder, StateDir
from .chain_view import ChainView, build_view, chain_jobs
from .errors import LongrunError
from .protocol import Event
from .slurm_output import QueueRow


def view_of(
    folder: ChainFolder,
    record: ChainRecord,
    events: Sequence[Event],
    ended: str | None,
    queue: Mapping[str, QueueRow] | None = None,
) -> ChainView | ArrayView:
    """The chain, or the array with its elements: the one place that tells them apart."""
    if record.is_array:
        return build_array_view(record, events, ended, folder.element_ends(), queue)
    return build_view(record, events, ended, queue)


def live_view(folder: ChainFolder, *, ask_slurm: bool = True) -> ChainView:
    """The chain now: event log, plus one squeue call for jobs that may still be in the queue."""
    record = folder.read_meta()
    events = folder.read_events()
    ended = folder.ended()
    if not ask_slurm or ended:
        return build_view(record, events, ended)
    asked = jobs_to_ask(build_view(record, events, ended))
    return build_view(record, events, ended, slurm.queue_rows(asked, record.cluster_args()))


def read_view(folder: ChainFolder, *, ask_slurm: bool = True) -> ChainView | ArrayView:
    """The chain or the array now (see live_view and live_array_view)."""
    if folder.read_meta().is_array:
        return live_array_view(folder, ask_slurm=ask_slurm)
    return live_view(folder, ask_slurm=ask_slurm)


def jobs_to_ask(view: ChainView) -> set[str]:
    """The jobs of a chain whose state only Slurm can tell: unsettled links, queued successors."""
    unsettled = {link.job_id for link in view.links if link.state in states.UNSETTLED_STATES}
    return {*unsettled, *(job for job in (view.successor_job, view.submitted_job) if job)}


def live_jobs(view: ChainView | ArrayView) -> set[str]:
    """The jobs of a chain or an array that only Slurm can tell about."""
    return array_jobs_to_ask(view) if isinstance(view, ArrayView) else jobs_to_ask(view)


def live_array_view(folder: ChainFolder, *, ask_slurm: bool = True) -> ArrayView:
    """An array chain now: its events, plus one squeue call for the array and the live
    elements' successors (never for elements that have ended)."""
    record = folder.read_meta()
    events = folder.read_events()
    ended, ends = folder.ended(), folder.element_ends()
    view = build_array_view(record, events, ended, ends)
    if not ask_slurm or not view.is_live:
        return view
    asked = array_jobs_to_ask(view)
    rows = slurm.queue_rows(asked, record.cluster_args()) if asked else {}
    return build_array_view(record, events, ended, ends, rows)


def array_jobs_to_ask(view: ArrayView) -> set[str]:
    """The live elements' jobs, with the array's own id for all of its tasks at once."""
    jobs = {
        job for element in view.elements.values() if element.is_live for job in jobs_to_ask(element)
    }
    tasks = {job for job in jobs if "_" in job}
    return (jobs - tasks) | ({view.array_job} if tasks else set())


def chain_or_element(
    folder: ChainFolder,
    record: ChainRecord,
    events: Sequence[Event],
    element: int | None,
    queue: Mapping[str, QueueRow] | None,
) -> tuple[ChainView, set[str]]:
    """The chain (or one array element) as a chain view, and the jobs that are its own."""
    if element is None:
        return build_view(record, events, folder.ended(), queue), set(chain_jobs(events))
    array = build_array_view(record, events, folder.ended(), folder.element_ends(), queue)
    jobs = {job for job, own in elements_of_jobs(events).items() if own == element}
    return array.elements[element], {f"{array.array_job}_{element}", *jobs} - {array.array_job}


def list_views(
    state_dir: StateDir, live_only: bool = False, checked: Sequence[ChainFolder] | None = None
) -> list[ChainView | ArrayView]:
    """Every chain (or these, whose safety the caller checked), newest first; the live ones
    share one squeue call."""
    loaded = []
    for folder in state_dir.list() if checked is None else checked:
        try:
            if checked is None:
                folder.check_safe()
            loaded.append((folder, folder.read_meta(), folder.read_events(), folder.ended()))
        except LongrunError as exc:
            log.warning("skipped {}: {}", folder.path, exc.message)

    views = [view_of(*item) for item in loaded]
    wanted = {job for view in views if view.is_live for job in live_jobs(view)}
    queue: dict[str, QueueRow] = {}
    if wanted:
        try:
            queue = slurm.queue_rows(wanted, loaded[0][1].cluster_args())
        except LongrunError as exc:
            log.warning("squeue failed; live chains are shown from their logs only: {}", exc)
    if queue:
        views = [
            view_of(*item, queue) if view.is_live else view for item, view in zip(loaded, views)
        ]
    return [view for view in views if view.is_live or not live_only]
