"""Text for people: the status table, the list of chains, and one line per watched event."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .chain_view import STATE_PHRASES, ChainView, iso
from .states import VERDICT_TERMINATED


def duration(seconds: int | None) -> str:
    """[D-]HH:MM:SS, as Slurm writes elapsed times."""
    if seconds is None:
        return "-"
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{text}" if days else text


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


def status_text(view: ChainView) -> str:
    head = f"Chain {view.chain_id} ({view.job_name}): {view.state}"
    if view.reason:
        head += f" - {view.reason}"
    rows = [
        [
            str(link.link),
            link.job_id,
            link.state,
            link.why or "-",
            clock(link.start_epoch),
            clock(link.end_epoch) if link.state not in ("RUNNING", "PENDING") else "-",
            duration(link.elapsed),
            "-" if link.exit_code is None else str(link.exit_code),
        ]
        for link in view.links
    ]
    parts = [head]
    if rows:
        parts.append(
            table(["LINK", "JOB", "STATE", "WHY", "START", "END", "ELAPSED", "EXIT"], rows)
        )
    elif view.submitted_job:
        parts.append(f"Job {view.submitted_job} has not started yet.")
    for link in view.links:
        if link.slurm_restarts:
            times = "once" if link.slurm_restarts == 1 else f"{link.slurm_restarts} times"
            parts.append(
                f"Link {link.link} (job {link.job_id}) was requeued by Slurm {times} and ran "
                "again with the same job id."
            )
    if view.standby_job and view.is_live:
        parts.append(f"Successor queued: job {view.standby_job}")
    count = len(view.links)
    parts.append(
        f"Total run time: {duration(view.total_run_seconds)} over {count} "
        f"link{'s' if count != 1 else ''} (at most {view.max_restarts + 1})"
    )
    return "\n".join(parts)


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
    return table(
        ["CHAIN", "NAME", "STATE", "LINKS", "CURRENT JOB", "LAST CHANGE"],
        [
            [
                str(r["chain_id"]),
                str(r["job_name"]),
                str(r["state"]),
                str(r["links"]),
                str(r["current_job"] or "-"),
                clock(r["last_change_epoch"]),
            ]
            for r in rows
        ],
    )


def event_line(event: Mapping[str, Any], max_restarts: int, verbose: bool) -> str | None:
    """One line for one event of the log, or None for events only shown when verbose."""
    kind = event.get("event")
    job = event.get("job")
    total = max_restarts + 1

    def label(index: Any) -> str:
        try:
            return f"link {int(index) + 1}/{total}"
        except (TypeError, ValueError):
            return "link ?"

    here = label(event.get("link"))
    if kind == "submitted":
        return f"Job submitted with ID {job} ({here})"
    if kind == "link_started":
        restarts = int(event.get("slurm_restarts") or 0)
        if restarts:
            return (
                f"Job {job} ({here}) restarted by Slurm with the same job id (requeue {restarts})"
            )
        return f"Watching job {job} ({here})"
    if kind == "judged":
        return _judged_line(event, label)
    if kind == "decision":
        return f"Job {job} ({here}): {event.get('reason')}"
    if kind == "pretimeout_signal":
        return f"Job {job} ({here}): pre-timeout signal {event.get('signal')}"
    if kind == "sigterm":
        if event.get("cause"):
            return f"Job {job} ({here}): SIGTERM from Slurm ({event.get('cause')})"
        if event.get("verdict") == VERDICT_TERMINATED:
            return f"Job {job} ({here}): SIGTERM with no sign of a time limit or preemption"
        return f"Job {job} ({here}): stopped from outside (time limit, preemption or scancel)"
    if kind == "signal_forwarded":
        return f"Job {job}: {event.get('signal')} passed on to the script" if verbose else None
    if kind == "standby_submitted":
        return f"Job {event.get('standby')} queued to follow job {job}" if verbose else None
    if kind in ("standby_retry", "standby_failed"):
        return f"Job {job}: could not queue a successor: {event.get('error')}"
    if kind == "standby_missing":
        return f"Job {job}: successor {event.get('standby')} went missing; queuing a new one"
    if kind == "standby_found":
        return f"Job {job}: successor {event.get('standby')} was queued although sbatch failed"
    if kind == "standby_unchecked":
        return f"Job {job}: could not check successor {event.get('standby')}; it is kept"
    if kind == "standby_cancelled_by_user":
        return (
            f"Job {job} ({here}): its successor {event.get('standby')} was cancelled: "
            "the chain stops after this link"
        )
    if kind == "claim_lost":
        return f"Job {job}: job {event.get('owner')} already continues the chain; it ends unused"
    if kind == "body_skipped":
        return f"Job {job} ({here}): the script does not run: {event.get('reason')}"
    if kind == "backoff":
        return (
            f"Job {job}: {event.get('short_links')} links in a row ran under a minute; "
            f"job {event.get('standby')} starts in {event.get('seconds')}s"
        )
    if kind == "repaired":
        return (
            f"Successor of job {job} was missing: submitted job {event.get('standby')} "
            f"({label(event.get('next_link'))})"
        )
    if kind == "retry":
        return f"Job {job}: retrying the failed script ({event.get('attempt')}/{event.get('of')})"
    if kind == "warning":
        return f"Job {job}: warning: {event.get('message')}"
    if kind == "cancelled_beyond_max":
        return f"Cancelled job {job}: it is beyond --max-restarts {event.get('max_restarts')}"
    if kind == "chain_ended":
        return f"Chain ended {event.get('state')}: {event.get('reason')}"
    return None


def _judged_line(event: Mapping[str, Any], label: Any) -> str:
    """How the previous link ended, and whether this link takes over or ends the chain."""
    state = str(event.get("slurm_state") or "unknown")
    phrase = STATE_PHRASES.get(state, "in a state Slurm did not report")
    try:
        previous_label = label(int(event.get("link") or 0) - 1)
    except (TypeError, ValueError):
        previous_label = "link ?"
    head = f"Job {event.get('previous')} ({previous_label}) ended {state}: {phrase}"
    outcome = str(event.get("outcome") or "")
    if outcome.startswith("end"):
        return f"{head}; {event.get('reason')}, so the chain ends"
    here = label(event.get("link"))
    return f"{head}; job {event.get('job')} ({here}) takes over"


def progress_line(view: ChainView, now: float | None = None) -> str:
    now = time.time() if now is None else now
    last = view.links[-1] if view.links else None
    if last is None:
        return f"[{view.chain_id}] {view.state}: {view.reason}"
    return (
        f"[{view.label(last)}] job {last.job_id} {last.state} {duration(last.elapsed)}"
        f" | chain {view.state}, run time {duration(view.total_run_seconds)}"
    )
