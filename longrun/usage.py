"""`longrun usage`: what a chain cost, link by link and in total, from Slurm's accounting.

Accounting tools show each job on its own; a chain is many jobs (and a requeued job several
runs), so its cost is hidden. Here every run of every link is counted once: the time it waited
in the queue once eligible, its elapsed time, the CPU time it held (AllocCPUS x Elapsed) and
used (TotalCPU), GPU hours (AllocTRES gres/gpu) and the peak memory of its steps. The overhead
is what longrun itself held in allocation: from a job's start to its body's start, from the
body's end to the job's end, and whole jobs that ran no body. The work at risk is, for each
interrupted link of a chain that tracks progress (--progress-file), the time from the last
progress to the interruption.

One sacct call per chain (one for a whole `longrun list --usage`), bounded by the chain's
submit time so that a job id Slurm used before never mixes in. Pure functions of the rows and
the events, apart from `chain_usage` and `usage_of_chains`, which ask.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import chain_actions, chain_reading, log, protocol, slurm, states
from .array_view import ArrayView, elements_of
from .chain_store import ChainFolder, StateDir, reading
from .chain_view import ChainView, iso
from .errors import LongrunError
from .protocol import Event, as_events
from .slurm_output import UsageRow, slurm_epoch


@dataclass(frozen=True)
class BodyTimes:
    """When a link's body ran, from its own events (seconds since the epoch)."""

    start: float | None = None
    end: float | None = None
    progress: float | None = None  # the last progress its chain saw by its end


@dataclass(frozen=True)
class LinkUsage:
    """One link: every run Slurm recorded for its job (a requeue adds runs)."""

    element: int | None
    link: int
    job_id: str
    state: str
    runs: tuple[UsageRow, ...]
    body: BodyTimes
    kind: str  # how it ended (states.link_kind)

    @property
    def interrupted(self) -> bool:
        return self.kind in states.INTERRUPTED_KINDS

    @property
    def recorded(self) -> bool:
        return bool(self.runs)

    @property
    def start(self) -> int | None:
        return min((r.start for r in self.runs if r.start), default=None)

    @property
    def end(self) -> int | None:
        return max((r.end for r in self.runs if r.end), default=None)

    @property
    def queued(self) -> int:
        return sum(max(0, r.start - r.eligible) for r in self.runs if r.start and r.eligible)

    @property
    def elapsed(self) -> int:
        return sum(r.elapsed for r in self.runs)

    @property
    def cpu_allocated(self) -> int:
        return sum(r.cpus * r.elapsed for r in self.runs)

    @property
    def cpu_used(self) -> float:
        return sum(r.cpu_used for r in self.runs)

    @property
    def gpu_seconds(self) -> int:
        return sum(r.gpus * r.elapsed for r in self.runs)

    @property
    def max_rss(self) -> int | None:
        peaks = [r.max_rss for r in self.runs if r.max_rss is not None]
        return max(peaks) if peaks else None

    @property
    def nodes(self) -> str:
        return self.runs[-1].nodes if self.runs else ""

    @property
    def ran_body(self) -> bool:
        return self.body.start is not None

    @property
    def overhead(self) -> tuple[int, int]:
        """(before the body, after it) in seconds of this job's elapsed time; a job that ran no
        body: all of it before."""
        start, end = self.start, self.end
        if not self.runs or start is None:
            return 0, 0
        if self.body.start is None:
            return self.elapsed, 0
        before = min(self.elapsed, max(0, round(self.body.start - start)))
        after = 0
        if self.body.end is not None and end is not None:
            after = min(self.elapsed - before, max(0, round(end - self.body.end)))
        return before, after

    @property
    def at_risk(self) -> int | None:
        """Seconds from the last progress to the interruption (0 for a link that was not
        interrupted); None when the chain does not track progress."""
        if self.body.progress is None:
            return None
        if not self.interrupted or self.end is None or self.body.start is None:
            return 0
        since = max(self.body.progress, self.body.start)
        return max(0, round(self.end - since))

    def to_json(self) -> dict[str, Any]:
        before, after = self.overhead
        return {
            "element": self.element,
            "link": self.link,
            "job_id": self.job_id,
            "state": self.state,
            "kind": self.kind,
            "recorded": self.recorded,
            "runs": len(self.runs),
            "nodes": self.nodes,
            "start": iso(self.start),
            "end": iso(self.end),
            "queued_seconds": self.queued,
            "elapsed_seconds": self.elapsed,
            "cpu_allocated_seconds": self.cpu_allocated,
            "cpu_used_seconds": round(self.cpu_used, 3),
            "gpu_seconds": self.gpu_seconds,
            "max_rss_bytes": self.max_rss,
            "ran_body": self.ran_body,
            "overhead_before_seconds": before,
            "overhead_after_seconds": after,
            "at_risk_seconds": self.at_risk,
        }


@dataclass(frozen=True)
class Totals:
    """The sum over links (the peak memory: the largest)."""

    links: int = 0
    recorded: int = 0
    queued: int = 0
    elapsed: int = 0
    cpu_allocated: int = 0
    cpu_used: float = 0.0
    gpu_seconds: int = 0
    max_rss: int | None = None
    overhead_before: int = 0
    overhead_after: int = 0
    without_body: int = 0  # links that ran no body
    without_body_seconds: int = 0
    at_risk: int | None = None

    @property
    def overhead(self) -> int:
        return self.overhead_before + self.overhead_after

    def to_json(self) -> dict[str, Any]:
        return {
            "links": self.links,
            "recorded_links": self.recorded,
            "queued_seconds": self.queued,
            "elapsed_seconds": self.elapsed,
            "cpu_allocated_seconds": self.cpu_allocated,
            "cpu_used_seconds": round(self.cpu_used, 3),
            "gpu_seconds": self.gpu_seconds,
            "gpu_hours": round(self.gpu_seconds / 3600, 3),
            "max_rss_bytes": self.max_rss,
            "overhead_seconds": self.overhead,
            "overhead_before_seconds": self.overhead_before,
            "overhead_after_seconds": self.overhead_after,
            "links_without_body": self.without_body,
            "links_without_body_seconds": self.without_body_seconds,
            "at_risk_seconds": self.at_risk,
        }


def totals(links: Iterable[LinkUsage]) -> Totals:
    items = list(links)
    peaks = [link.max_rss for link in items if link.max_rss is not None]
    risks = [link.at_risk for link in items if link.at_risk is not None]
    idle = [link for link in items if link.recorded and not link.ran_body]
    return Totals(
        links=len(items),
        recorded=sum(link.recorded for link in items),
        queued=sum(link.queued for link in items),
        elapsed=sum(link.elapsed for link in items),
        cpu_allocated=sum(link.cpu_allocated for link in items),
        cpu_used=sum(link.cpu_used for link in items),
        gpu_seconds=sum(link.gpu_seconds for link in items),
        max_rss=max(peaks) if peaks else None,
        overhead_before=sum(link.overhead[0] for link in items),
        overhead_after=sum(link.overhead[1] for link in items),
        without_body=len(idle),
        without_body_seconds=sum(link.elapsed for link in idle),
        at_risk=sum(risks) if risks else None,
    )


@dataclass(frozen=True)
class ChainUsage:
    chain_id: str
    job_name: str
    state: str
    created: str
    array: bool
    links: tuple[LinkUsage, ...] = field(default_factory=tuple)

    @property
    def total(self) -> Totals:
        return totals(self.links)

    def elements(self) -> dict[int, Totals]:
        indices = sorted({link.element for link in self.links if link.element is not None})
        return {i: totals(link for link in self.links if link.element == i) for i in indices}

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "chain_id": self.chain_id,
            "job_name": self.job_name,
            "state": self.state,
            "created": self.created,
            "links": [link.to_json() for link in self.links],
            "total": self.total.to_json(),
        }
        if self.array:
            data["elements"] = {str(i): t.to_json() for i, t in self.elements().items()}
        return data


def body_times(events: Sequence[Mapping[str, Any]]) -> dict[str, BodyTimes]:
    """Per job: when its body started and exited, and (a chain with --progress-file) when the
    progress file last changed by the job's end: its own look at its end, or, for a link killed
    before it could look, the next link's look at its start."""
    events = as_events(events)
    started: dict[str, float] = {}
    exited: dict[str, float] = {}
    progress: dict[str, float] = {}
    for event in events:
        job = event.text("job")
        kind = event.kind
        when = _number(event.get("t")) or _number(event.get("epoch"))
        if not job or when is None:
            continue
        if kind == protocol.BODY_STARTED:
            started.setdefault(job, when)
        elif kind == protocol.BODY_EXITED:
            exited[job] = when
        elif kind == protocol.PROGRESS:
            if event.text("at") == protocol.PROGRESS_AT_START:
                job = event.text("previous")
            if job:  # a file not written yet: no progress (0)
                progress[job] = max(progress.get(job, 0.0), _number(event.get("mtime")) or 0.0)
    jobs = started.keys() | exited.keys() | progress.keys()
    return {job: BodyTimes(started.get(job), exited.get(job), progress.get(job)) for job in jobs}


def link_usages(
    view: ChainView,
    element: int | None,
    rows: Mapping[str, Sequence[UsageRow]],
    bodies: Mapping[str, BodyTimes],
) -> list[LinkUsage]:
    return [
        LinkUsage(
            element=element,
            link=link.number,
            job_id=link.job_id,
            state=link.state,
            runs=tuple(rows.get(link.job_id, ())),
            body=bodies.get(link.job_id, BodyTimes()),
            kind=states.link_kind(link.state, link.verdict, link.preempted),
        )
        for link in view.links
    ]


def usage_from(
    view: ChainView | ArrayView,
    rows: Sequence[UsageRow],
    events: Sequence[Event],
    element: int | None = None,
) -> ChainUsage:
    """The chain's usage (or one element's: `element`) from sacct's rows for its jobs and its
    events (a pure function)."""
    by_job: dict[str, list[UsageRow]] = {}
    for row in rows:
        by_job.setdefault(row.job_raw, []).append(row)
        if row.job != row.job_raw:
            by_job.setdefault(row.job, []).append(row)
    bodies = body_times(events)
    links = [
        usage
        for index, own in sorted(elements_of(view).items(), key=lambda item: item[0] or 0)
        for usage in link_usages(own, element if index is None else index, by_job, bodies)
    ]
    return ChainUsage(
        chain_id=view.chain_id,
        job_name=view.job_name,
        state=view.state,
        created=view.created,
        array=isinstance(view, ArrayView),
        links=tuple(links),
    )


def jobs_of(view: ChainView | ArrayView) -> list[str]:
    """The job ids whose accounting a chain's usage needs: the jobs of its links."""
    return [link.job_id for element in elements_of(view).values() for link in element.links]


def chain_usage(folder: ChainFolder, element: int | None = None) -> ChainUsage:
    """A chain's usage (or one array element's), from one sacct call."""
    view = chain_actions.status_view(folder, element)
    clusters = folder.read_meta().cluster_args()
    rows = slurm.usage_rows(jobs_of(view), view.created, clusters)
    return usage_from(view, rows, folder.read_events(), element)


def usage_of_chains(state_dir: StateDir) -> dict[str, ChainUsage]:
    """Every readable chain of the state directory, from one sacct call (from the oldest
    chain's submit time); each chain keeps only the runs submitted at or after its own."""
    chains = []
    clusters: list[str] = []
    for folder in state_dir.list():
        try:
            with reading(folder):
                folder.check_safe()
                view = chain_reading.read_view(folder, ask_slurm=False)
                chains.append((view, folder.read_events()))
                clusters = clusters or folder.read_meta().cluster_args()
        except LongrunError as exc:
            log.debug("no usage for {}: {}", folder.path, exc.message)
    jobs = [job for view, _ in chains for job in jobs_of(view)]
    since = min((view.created for view, _ in chains if view.created), default="")
    rows = slurm.usage_rows(jobs, since, clusters) if jobs else []
    result = {}
    for view, events in chains:
        created = slurm_epoch(view.created)
        own = [r for r in rows if created is None or r.submit is None or r.submit >= created]
        result[view.chain_id] = usage_from(view, own, events)
    return result


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if abs(number) < 2**53 else None
