"""Text for people: the status table, the list of chains, and one line per watched event."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import protocol, states
from .array_view import ArrayView
from .chain_view import KEEPER_WANTED, ChainView, LinkView, iso
from .protocol import Event, as_event


def duration(seconds: int | None) -> str:
    """[D-]HH:MM:SS, as Slurm writes elapsed times."""
    if seconds is None:
        return "-"
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{text}" if days else text


def hours(seconds: float) -> str:
    """Seconds as hours, as accounting bills them (CPU hours, GPU hours)."""
    return f"{seconds / 3600:.2f}"


def clock(epoch: int | None) -> str:
    stamp = iso(epoch)
    return stamp.replace("T", " ") if stamp else "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def _progress_cell(link: LinkView) -> str:
    """--progress-file after the link: its value (or when it changed), and the idle links."""
    seen = link.progress
    if not seen:
        return "-"
    changed = seen.get("mtime_epoch")
    if changed is None:
        shown = "no file yet"
    elif seen.get("value"):
        shown = f"{seen['value']} at {clock(changed)}"
    else:
        shown = f"changed {clock(changed)}"
    idle = seen.get("idle")
    return f"{shown} (idle {idle})" if idle else shown


def status_text(view: ChainView) -> str:
    tracked = any(link.progress for link in view.links)
    head = f"Chain {view.chain_id} ({view.job_name}): {view.state}"
    if view.reason:
        head += f" - {view.reason}"
    rows = [
        [
            str(link.number),
            link.job_id,
            link.state,
            link.why or "-",
            clock(link.start_epoch),
            clock(link.end_epoch) if link.state not in (states.RUNNING, states.PENDING) else "-",
            duration(link.elapsed),
            "-" if link.exit_code is None else str(link.exit_code),
            (link.nodes or "-") + (" (avoided)" if link.avoided else ""),
            *([_progress_cell(link)] if tracked else []),
        ]
        for link in view.links
    ]
    parts = [head]
    if rows:
        headers = ["LINK", "JOB", "STATE", "WHY", "START", "END", "ELAPSED", "EXIT", "NODES"]
        parts.append(table([*headers, *(["PROGRESS"] if tracked else [])], rows))
    elif view.submitted_job:
        parts.append(f"Job {view.submitted_job} has not started yet.")
    for link in view.links:
        if link.slurm_restarts:
            times = "once" if link.slurm_restarts == 1 else f"{link.slurm_restarts} times"
            parts.append(
                f"Link {link.number} (job {link.job_id}) was requeued by Slurm {times} and ran "
                "again with the same job id."
            )
    memory = None
    for link in view.links:
        if link.handed_over:
            parts.append(
                f"Link {link.number} (job {link.job_id}) handed over without running the script: "
                f"{link.handed_over} (a free link, not counted against --max-restarts)."
            )
        if link.memory and memory is not None and link.memory != memory:
            parts.append(f"Link {link.number} (job {link.job_id}) asked for --{link.memory}M.")
        memory = link.memory or memory
    if view.avoided_nodes:
        parts.append(f"Nodes the chain avoids: {', '.join(view.avoided_nodes)}")
    if view.submit_refused:
        parts.append(
            f"This cluster refuses submissions from compute nodes: {view.submit_refused}; "
            "a keeper on a login node queues the successors."
        )
    if view.folder_problem:
        parts.append(folder_warning(view.folder_problem))
    if view.waiting:
        parts.append(f"Waiting: {view.waiting}.")
    if view.successor_job and view.is_live:
        parts.append(f"Successor queued: job {view.successor_job}")
    elif view.successor_refused:
        parts.append(
            f"Successor: refused by sbatch ({view.successor_refused}); the running link keeps "
            "trying while its script runs."
        )
    elif view.awaits_keeper:
        parts.append(f"Successor: not queued yet; {KEEPER_WANTED}.")
    count = len(view.links)
    parts.append(
        f"Total run time: {duration(view.total_run_seconds)} over {count} "
        f"link{'s' if count != 1 else ''} (at most {view.restart_limit + 1})"
    )
    return "\n".join(parts)


def list_rows(views: Sequence[ChainView | ArrayView]) -> list[dict[str, Any]]:
    """One row per chain for `longrun list` (and its --json); an array is one row."""
    rows = []
    for view in views:
        links: int
        elements: dict[str, int] | None
        current: str | None
        if isinstance(view, ArrayView):
            links, elements, current = view.links, view.counts, view.array_job
        else:
            links, elements, current = len(view.links), None, view.current_job
        rows.append(
            {
                "chain_id": view.chain_id,
                "job_name": view.job_name,
                "state": view.state,
                "links": links,
                "elements": elements,
                "current_job": current,
                "created": view.created,
                "last_change": iso(view.last_change_epoch),
                "last_change_epoch": view.last_change_epoch,
            }
        )
    return rows


def array_status_text(view: ArrayView) -> str:
    """One summary line, then one row per element."""
    head = f"Array chain {view.chain_id} ({view.job_name}, array job {view.array_job}): "
    head += f"{view.state} - {len(view.elements)} elements: {view.counts_text()}"
    rows = [
        [
            str(index),
            str(len(element.links)),
            element.state,
            element.current_job or "-",
            clock(element.last_change_epoch),
            element.reason or "-",
        ]
        for index, element in view.elements.items()
    ]
    body = table(["ELEMENT", "LINKS", "STATE", "CURRENT JOB", "LAST CHANGE", "WHY"], rows)
    warning = f"\n{folder_warning(view.folder_problem)}" if view.folder_problem else ""
    return (
        f"{head}\n{body}\n`longrun status {view.chain_id} --element N` shows one element's links."
        + warning
    )


def folder_warning(problem: str) -> str:
    return (
        f"Warning: {problem}: the links cannot record their claims, verdicts and events there; "
        "free space, then see the job log."
    )


def list_text(
    rows: Sequence[Mapping[str, Any]], root: Path, exists: bool = True, live_only: bool = False
) -> str:
    if not rows:
        if not exists:
            return (
                f"No chains: {root} does not exist. Submit with sbatch_longrun, or point "
                "--state-dir (or $LONGRUN_HOME) at the state directory you used."
            )
        return f"No {'live ' if live_only else ''}chains in {root}."
    damaged = [str(r.get("reason")) for r in rows if r["state"] == states.CHAIN_DAMAGED]
    return "\n".join([_list_table(rows), *damaged])


def _list_table(rows: Sequence[Mapping[str, Any]]) -> str:
    usage = any("usage" in r for r in rows)  # longrun list --usage
    return table(
        ["CHAIN", "NAME", "STATE", "LINKS", "ELEMENTS", "CURRENT JOB", "LAST CHANGE"]
        + (["ELAPSED", "CPU H", "GPU H"] if usage else []),
        [
            [
                str(r["chain_id"]),
                str(r["job_name"]),
                str(r["state"]),
                str(r["links"]),
                ", ".join(f"{k} {v}" for k, v in r["elements"].items()) if r["elements"] else "-",
                str(r["current_job"] or "-"),
                clock(r["last_change_epoch"]),
                *(_usage_cells(r.get("usage")) if usage else []),
            ]
            for r in rows
        ],
    )


def _usage_cells(total: Mapping[str, Any] | None) -> list[str]:
    """Elapsed, CPU hours held and GPU hours of a chain (a Totals.to_json())."""
    if not total:
        return ["-", "-", "-"]
    gpu = total["gpu_seconds"]
    return [
        duration(total["elapsed_seconds"]),
        hours(total["cpu_allocated_seconds"]),
        hours(gpu) if gpu else "-",
    ]


# One line per event, filled from the event's fields ({here}: "link N/M" of the event's link).
EVENT_LINES = {
    protocol.SUBMITTED: "Job submitted with ID {job} ({here})",
    protocol.VERDICT_RECORDED: "Job {job} ({here}): {reason}",
    protocol.PRETIMEOUT_SIGNAL: "Job {job} ({here}): pre-timeout signal {signal}",
    protocol.SUCCESSOR_RETRY: "Job {job}: could not queue a successor: {error}",
    protocol.SUCCESSOR_FAILED: "Job {job}: could not queue a successor: {error}",
    protocol.SUCCESSOR_MISSING: "Job {job}: successor {successor} went missing; queuing a new one",
    protocol.SUCCESSOR_FOUND: "Job {job}: successor {successor} was queued although sbatch failed",
    protocol.SUCCESSOR_UNCHECKED: "Job {job}: could not check successor {successor}; it is kept",
    protocol.SUCCESSOR_STOPPED: "Job {job} ({here}): its successor {successor} ended {state} "
    "before it ran: the chain stops after this link",
    protocol.CLAIM_LOST: "Job {job}: job {owner} already continues the chain; it ends unused",
    protocol.BODY_SKIPPED: "Job {job} ({here}): the script does not run: {reason}",
    protocol.BACKOFF: "Job {job}: {short_links} links in a row ran under a minute; job "
    "{successor} starts in {seconds}s",
    protocol.REPAIRED: "Successor of job {job} was missing: submitted job {successor} ({next})",
    protocol.REPAIR_REFUSED: "Chain stalled: {reason}",
    protocol.RETRY: "Job {job}: retrying the failed script ({attempt}/{of})",
    protocol.WARNING: "Job {job}: warning: {message}",
    protocol.CANCELLED_BEYOND_MAX: "Cancelled job {job}: it is beyond --max-restarts "
    "{max_restarts}",
    protocol.CHAIN_ENDED: "Chain ended {state}: {reason}",
    protocol.CHAIN_STALLED: "Job {job} ({here}): the chain stalls: {reason}",
    protocol.NOTIFY_FAILED: "Job {job}: the notifier ({notifier}) failed at {notified}: {error}",
    protocol.NODES_AVOIDED: "Job {job}: later links avoid node(s) {nodes} ({cause})",
    protocol.AVOID_DROPPED: "Job {job}: node(s) {nodes} not avoided after all: {reason}",
    protocol.NODE_CHECK_FAILED: "Job {job}: --node-check failed on {nodes} (exit {exit_code})",
    protocol.HANDED_OVER: "Job {job} ({here}): {reason}: the script does not run there (a free "
    "link)",
    protocol.MEMORY_GROWN: "Job {job}: it ran out of memory, so later links ask for --{option}="
    "{after}M (was {before}M)",
    protocol.TIME_CUT: "Job {job} ({here}): the last of --total-time: time limit cut to "
    "{limit} min",
    protocol.SUBMIT_REFUSED: "Job {job} ({here}): this cluster refuses submissions from compute "
    "nodes: {error}; the chain needs a keeper on a login node: `longrun keeper`",
    protocol.KEEPER_FAILED: "Job {job}: the {by} could not queue its successor: {error}",
}
# Shown only with --verbose.
VERBOSE_LINES = {
    protocol.SIGNAL_FORWARDED: "Job {job}: {signal} passed on to the script",
    protocol.SUCCESSOR_QUEUED: "Job {successor} queued to follow job {job}",
    protocol.SUCCESSOR_REQUESTED: "Job {job}: its successor is left to a keeper ({reason})",
}


def event_line(event: Mapping[str, Any], max_restarts: int, verbose: bool) -> str | None:
    """One line for one event of the log, or None for events only shown when verbose."""
    event = as_event(event)
    kind = str(event.kind)
    total = max_restarts + 1

    def label(restart_count: int | None) -> str:
        return "link ?" if restart_count is None else f"link {restart_count + 1}/{total}"

    count = protocol.restart_count_of(event)
    fields = defaultdict(lambda: "?", {k: v for k, v in event.items() if v is not None})
    fields.update(here=label(count), next=label(None if count is None else count + 1))
    if kind == protocol.LINK_STARTED:
        if event.number("slurm_restarts"):
            text = "Job {job} ({here}) restarted by Slurm with the same job id (requeue {n})"
            fields["n"] = fields["slurm_restarts"]
            return text.format_map(fields)
        return "Watching job {job} ({here})".format_map(fields)
    if kind == protocol.JUDGED:
        return _judged_line(event, label)
    if kind == protocol.SIGTERM:
        if event.text("cause"):
            return "Job {job} ({here}): SIGTERM from Slurm ({cause})".format_map(fields)
        if event.text("verdict") == states.VERDICT_TERMINATED:
            text = "Job {job} ({here}): SIGTERM with no sign of a time limit or preemption"
        else:
            text = "Job {job} ({here}): stopped from outside (time limit, preemption or scancel)"
        return text.format_map(fields)
    line = EVENT_LINES.get(kind) or (VERBOSE_LINES.get(kind) if verbose else None)
    return line.format_map(fields) if line else None


def _judged_line(event: Event, label: Any) -> str:
    """How the previous link ended, and whether this link takes over or ends the chain."""
    state = event.text("slurm_state") or "unknown"
    phrase = states.STATE_PHRASES.get(state, "in a state Slurm did not report")
    count = protocol.restart_count_of(event)
    previous_label = label(None if count is None else count - 1)
    head = f"Job {event.text('previous')} ({previous_label}) ended {state}: {phrase}"
    outcome = event.text("outcome")
    if outcome.startswith(states.END_PREFIX) or outcome == states.END_AS_RECORDED:
        return f"{head}; {event.text('reason')}, so the chain ends"
    here = label(count)
    return f"{head}; job {event.job} ({here}) takes over"


def progress_line(view: ChainView, now: float | None = None) -> str:
    now = time.time() if now is None else now
    last = view.links[-1] if view.links else None
    if last is None:
        return f"[{view.chain_id}] {view.state}: {view.reason}"
    return (
        f"[{view.label(last)}] job {last.job_id} {last.state} {duration(last.elapsed)}"
        f" | chain {view.state}, run time {duration(view.total_run_seconds)}"
    )
