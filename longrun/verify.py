"""`longrun verify`: did a chain keep the protocol's promises? Checked from the chain's own
event logs and from Slurm's accounting, for users who want to know that a long run went
cleanly, and for the tests that try to break the promises.

The checks, for a chain (or each element of an array):
- no two links overlapped in time (sacct's start and end of every link's job);
- every link after the first judged its own predecessor (its `judged` event names it);
- each link was continued by exactly one later link (one claim; a second job that lost the
  claim ran no body);
- exactly one end was recorded, and the `ended` file says that end;
- no job of the chain is still queued after its end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import protocol, slurm, states
from .array_view import build_array_view, split_events
from .arrays import element_key
from .chain_store import ChainFolder, reading
from .chain_view import chain_jobs, link_order
from .errors import SlurmCommandError, StateError
from .protocol import as_events
from .slurm_output import AccountingRow, QueueRow, slurm_epoch


@dataclass
class Report:
    """What verify found about one chain (or array element)."""

    chain: str
    ended: str | None
    links: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_links(
    chain: str,
    events: Sequence[Mapping[str, Any]],
    ended: str | None,
    accounting: Mapping[str, AccountingRow],
    queue: Mapping[str, QueueRow],
) -> Report:
    """The promises, checked on one chain's events, Slurm's accounting and queue (pure)."""
    events = as_events(events)
    started = [e for e in events if e.kind == protocol.LINK_STARTED]
    lost = {e.job for e in events if e.kind == protocol.CLAIM_LOST}
    links = link_order(events)  # by the links' own facts: each host's clock differs
    report = Report(chain, ended, len(links))
    problems = report.problems

    spans: list[tuple[float, float, str]] = []
    for job in links:
        row = accounting.get(job)
        began, ended_at = (slurm_epoch(row.start), slurm_epoch(row.end)) if row else (None, None)
        if began is None or (ended_at is None and job != links[-1]):
            problems.append(f"job {job}: no start and end in Slurm's accounting")
        else:
            spans.append((began, ended_at if ended_at is not None else float("inf"), job))
    spans.sort()
    for (_, finish, job), (begin, _, other) in zip(spans, spans[1:]):
        if finish > begin:
            problems.append(f"jobs {job} and {other} overlapped in time")

    previous_of = {e.job: e.text("previous") for e in started if e.job in links}
    judged = {(e.job, e.text("previous")) for e in events if e.kind == protocol.JUDGED}
    for before, job in zip(links, links[1:]):
        if previous_of.get(job) != before:
            problems.append(f"job {job} continued job {previous_of.get(job) or '?'}, not {before}")
        elif (job, before) not in judged:
            problems.append(f"job {job} did not judge its predecessor {before}")
    claims: dict[str, list[str]] = {}
    for event in events:
        if event.kind == protocol.CLAIMED:
            claims.setdefault(event.text("previous"), []).append(event.job)
    for previous, claimers in claims.items():
        if len(set(claimers)) > 1:
            problems.append(f"job {previous} was continued by {len(set(claimers))} jobs")
    ran = [e.job for e in events if e.kind == protocol.BODY_STARTED]
    if set(ran) & lost:
        problems.append(f"jobs that lost the claim ran the script: {sorted(set(ran) & lost)}")

    ends = [e for e in events if e.kind == protocol.CHAIN_ENDED]
    if ended is not None:
        if len(ends) != 1:
            problems.append(f"{len(ends)} ends were recorded, not one")
        elif ends[0].get("state") != ended:
            problems.append(f"the recorded end is {ended}, the event says {ends[0].get('state')}")
        queued = [job for job, row in queue.items() if states.is_active(row.state)]
        if queued:
            problems.append(f"ended {ended}, but jobs are still queued: {sorted(queued)}")
    return report


def verify(folder: ChainFolder) -> list[Report]:
    """Check one chain (an array: each element) against Slurm's accounting and queue; a chain
    whose folder is unsafe or cannot be read is a report with that one problem."""
    try:
        with reading(folder):
            folder.check_safe()
            return _verify(folder)
    except StateError as exc:
        return [Report(folder.chain_id, None, 0, [exc.message])]


def _verify(folder: ChainFolder) -> list[Report]:
    meta = folder.read_meta()
    events = folder.read_events()
    ended = folder.ended()  # every file read before Slurm is asked
    clusters = meta.cluster_args()
    jobs = chain_jobs(events)
    accounting = slurm.accounting_rows([j for j in jobs if "_" not in j], clusters)
    if accounting is None:
        raise SlurmCommandError(["sacct"], "", None, "verify needs Slurm's accounting: try again")
    queue = slurm.queue_rows(jobs, clusters) if jobs else {}
    if not meta.is_array:
        return [check_links(folder.chain_id, events, ended, accounting, queue)]
    view = build_array_view(meta, events, ended, folder.element_ends())
    reports = []
    for index, own in split_events(events, list(view.elements)).items():
        mine = set(chain_jobs(own)) | {f"{view.array_job}_{index}"}
        own_queue = {job: row for job, row in queue.items() if job in mine}
        ended = view.elements[index].state if not view.elements[index].is_live else None
        reports.append(
            check_links(element_key(folder.chain_id, index), own, ended, accounting, own_queue)
        )
    return reports


def report_text(report: Report) -> str:
    head = f"{report.chain}: {report.links} link(s), "
    head += f"ended {report.ended}" if report.ended else "still running (checked so far)"
    if report.ok:
        return f"{head}: OK"
    return "\n".join(
        [f"{head}: {len(report.problems)} problem(s)"]
        + [f"  - {problem}" for problem in report.problems]
    )
