"""Actions on a whole chain: look at it now, settle its last link, cancel it, repair a missing
successor, enforce --max-restarts.

Every Slurm command comes from longrun.slurm; what the chain looks like is longrun.chain_view's
business, and what states mean is longrun.states'.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loguru import logger

from . import protocol, slurm, states
from .chain_store import ChainFolder, StateDir
from .chain_view import ChainView, SlurmEnd, build_view, chain_jobs
from .environment import EXPORT_ALL, ExportMode, successor_arguments, successor_environment
from .errors import LongrunError
from .slurm_output import QueueRow


def cluster_args(meta: Mapping[str, Any]) -> list[str]:
    """-M CLUSTERS for every Slurm command of the chain with this metadata."""
    return slurm.cluster_args(meta.get("clusters"))


def live_view(folder: ChainFolder, *, ask_slurm: bool = True) -> ChainView:
    """The chain now: event log, plus one squeue call for jobs that may still be in the queue."""
    meta = folder.read_meta()
    events = folder.read_events()
    ended = folder.ended()
    if not ask_slurm or ended:
        return build_view(meta, events, ended)
    asked = jobs_to_ask(build_view(meta, events, ended))
    return build_view(meta, events, ended, slurm.queue_rows(asked, cluster_args(meta)))


def jobs_to_ask(view: ChainView) -> set[str]:
    """The jobs of a chain whose state only Slurm can tell: unsettled links, queued successors."""
    unsettled = {link.job_id for link in view.links if link.state in states.UNSETTLED_STATES}
    return {*unsettled, *(job for job in (view.successor_job, view.submitted_job) if job)}


def settle_last_link(folder: ChainFolder, view: ChainView) -> ChainView:
    """For a chain with nothing queued: learn once from sacct how the last link (and its
    successor, if one was queued) ended, and record it."""
    last = view.links[-1] if view.links else None
    if last is None:
        return view
    wanted = [last.job_id] if last.state in states.UNSETTLED_STATES else []
    wanted += [view.successor_job] if view.successor_job else []
    found = {
        job: SlurmEnd(row.state, row.start, row.end)
        for job, row in slurm.accounting_rows(wanted, cluster_args(folder.read_meta())).items()
    }
    settled = False
    for job in wanted:
        end = found.get(job)
        if end and states.is_final(end.state):
            folder.append_event(
                protocol.FINAL_STATE, job=job, state=end.state, start=end.start, end=end.end,
                source="sacct",
            )  # fmt: skip
            settled = True
    return live_view(folder, ask_slurm=False) if settled else view


def record_end(folder: ChainFolder, view: ChainView, by: str) -> None:
    """Write the chain's end when no link could (e.g. the last link was killed by its limit)."""
    if view.state in states.CHAIN_END_STATES and folder.set_ended(view.state):
        folder.append_event(protocol.CHAIN_ENDED, state=view.state, reason=view.reason, by=by)


@contextlib.contextmanager
def chain_lock(folder: ChainFolder) -> Iterator[None]:
    """One actor at a time may submit or cancel jobs of a chain (watchers, `longrun cancel`)."""
    with open(folder.path / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class CancelResult:
    cancelled: list[str]
    already_ended: str | None


def cancel_chain(folder: ChainFolder) -> CancelResult:
    """Cancel the successor first (so nothing follows), then the running link; record the end.

    Idempotent, and safe in any state. The end is recorded before the first scancel, so a link
    whose pre-timeout check runs meanwhile does not queue a new successor; the queue is checked
    again afterwards all the same.
    """
    with chain_lock(folder):
        previous = None if folder.set_ended(states.CHAIN_CANCELLED) else folder.ended()
        clusters = cluster_args(folder.read_meta())
        cancelled: list[str] = []
        for _ in range(3):
            jobs = chain_jobs(folder.read_events())
            rows = slurm.queue_rows(jobs, clusters)
            queued = {j: r for j, r in rows.items() if states.is_active(r.state)}
            queued = {j: r for j, r in queued.items() if j not in cancelled}
            if not queued:
                break
            for job in sorted(
                queued, key=lambda j: (not states.is_pending(queued[j].state), int(j))
            ):
                slurm.scancel(job, clusters)
                cancelled.append(job)
        if previous is None:
            folder.append_event(
                protocol.CHAIN_ENDED, state=states.CHAIN_CANCELLED,
                reason="cancelled with longrun cancel", by="longrun cancel",
                cancelled=",".join(cancelled),
            )  # fmt: skip
        elif cancelled:
            folder.append_event(
                protocol.JOBS_CANCELLED, jobs=",".join(cancelled), by="longrun cancel"
            )
        return CancelResult(cancelled, previous)


def needs_repair(view: ChainView, queue: Mapping[str, QueueRow], retries_left: bool) -> bool:
    """The last link ended in a way that continues the chain, restarts remain, nothing is queued.

    What an end means is decided by the rule table (longrun.states), as on the job side.
    """
    if view.state != states.CHAIN_STALLED or not view.links:
        return False
    if any(states.is_active(row.state) for row in queue.values()):
        return False
    last = view.links[-1]
    if last.restart_count >= view.max_restarts:
        return False
    state = last.state if states.is_final(last.state) else ""
    outcome = states.judge(last.verdict or "", state, last.preempted).outcome
    if outcome == states.RETRY_OR_FAIL:
        return retries_left
    return outcome in states.RUN_OUTCOMES and (state != "" or last.verdict is not None)


def repair(folder: ChainFolder, state: StateDir) -> str | None:
    """Submit the missing successor with the job side's rules; None if none is missing.

    Holds the chain lock and looks again under it, so two watchers never both submit; a
    successor on the link's own record or tagged for the next link in the queue counts as
    there, and only a definite answer from Slurm counts as missing.
    """
    with chain_lock(folder):
        meta = folder.read_meta()
        clusters = cluster_args(meta)
        events = folder.read_events()
        view = build_view(meta, events, folder.ended())
        last = view.links[-1] if view.links else None
        recorded = folder.successor(last.job_id) if last else None
        queue = slurm.queue_rows([*chain_jobs(events), *([recorded] if recorded else [])], clusters)
        view = build_view(meta, events, folder.ended(), queue)
        retries = _retries_of(events, last.job_id) if last else 0
        if last is None or not needs_repair(view, queue, retries < meta.get("retry_failed", 0)):
            return None
        next_count = last.restart_count + 1
        tag = protocol.link_tag(folder.chain_id, next_count + 1)
        found = slurm.tagged_jobs(tag, clusters)
        if found:
            folder.append_event(
                protocol.SUCCESSOR_FOUND, job=last.job_id, successor=found[0], by="watcher"
            )
            return None
        comment = f"--comment={meta.get('comment_prefix', '')}{tag}"
        how = ExportMode(meta.get("export_mode", EXPORT_ALL), tuple(meta.get("export_names", ())))
        arguments = [
            "--parsable", *meta.get("successor_options", []), comment,
            *successor_arguments(how, str(folder.env_file)), str(folder.link_script),
            *protocol.link_arguments(next_count, _initial_job(view), last.job_id, retries),
        ]  # fmt: skip
        env = successor_environment(folder.read_env(), how, os.environ.get("SLURM_CONF"))
        job_id = slurm.sbatch(arguments, cwd=meta.get("submit_dir") or "/", env=env, timeout=60)
        state.record_job(job_id, folder.chain_id)
        folder.append_event(
            protocol.REPAIRED, job=last.job_id, restart_count=last.restart_count,
            successor=job_id, command=shlex.join(["sbatch", *arguments]),
        )  # fmt: skip
        return job_id


def _initial_job(view: ChainView) -> str:
    return view.links[0].job_id if view.links else (view.submitted_job or "")


def _retries_of(events: Sequence[Mapping[str, Any]], job_id: str) -> int:
    """How many --retry-failed retries the chain had used when this link started."""
    for event in reversed(events):
        if event.get("event") == protocol.LINK_STARTED and str(event.get("job")) == job_id:
            try:
                return int(event.get("retries", 0))
            except (TypeError, ValueError):
                return 0
    return 0


def enforce_max_restarts(folder: ChainFolder, view: ChainView) -> list[str]:
    """Cancel any link started beyond --max-restarts (the job side never submits one)."""
    over = [
        link.job_id
        for link in view.links
        if link.restart_count > view.max_restarts and link.state in states.UNSETTLED_STATES
    ]
    clusters = cluster_args(folder.read_meta())
    for job in over:
        try:
            slurm.scancel(job, clusters)
            folder.append_event(
                protocol.CANCELLED_BEYOND_MAX, job=job, max_restarts=view.max_restarts
            )
        except LongrunError as exc:
            logger.warning("could not cancel job {} beyond --max-restarts: {}", job, exc)
    return over


def status_view(folder: ChainFolder) -> ChainView:
    """The chain for `longrun status`: live jobs from squeue; the last link settled if needed."""
    view = live_view(folder)
    if view.state == states.CHAIN_STALLED:
        view = settle_last_link(folder, view)
    record_end(folder, view, by="longrun status")
    return view


def list_views(state: StateDir, live_only: bool = False) -> list[ChainView]:
    """Every chain, newest first; the live ones share one squeue call."""
    loaded = []
    for folder in state.list():
        try:
            folder.check_safe()
            loaded.append((folder.read_meta(), folder.read_events(), folder.ended()))
        except LongrunError as exc:
            logger.warning("skipped {}: {}", folder.path, exc.message)
    views = [build_view(meta, events, ended) for meta, events, ended in loaded]
    wanted = {job for view in views if view.is_live for job in jobs_to_ask(view)}
    queue: dict[str, QueueRow] = {}
    if wanted:
        try:
            queue = slurm.queue_rows(wanted, cluster_args(loaded[0][0]))
        except LongrunError as exc:
            logger.warning("squeue failed; live chains are shown from their logs only: {}", exc)
    if queue:
        views = [
            build_view(meta, events, ended, queue) if view.is_live else view
            for (meta, events, ended), view in zip(loaded, views)
        ]
    return [view for view in views if view.is_live or not live_only]
