"""The rows of `longrun list`: cached rows (longrun/view_cache.py) for chains whose end is
recorded, so that a long list of ended chains costs a few `stat` calls each; the others from
their logs. A chain that cannot be read is a DAMAGED row, and the others are listed all the same."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from . import log, protocol, states
from .chain_reading import list_views, read_view
from .chain_store import ChainFolder, StateDir, reading
from .errors import LongrunError
from .report import list_rows
from .view_cache import cached_or_read, read_cached

# The fields of a row (report.list_rows); a cached row without them is read again.
ROW_FIELDS = (
    "chain_id", "job_name", "state", "links", "elements", "current_job", "created",
    "last_change", "last_change_epoch",
)  # fmt: skip


def list_rows_of(state_dir: StateDir, live_only: bool = False) -> list[dict[str, Any]]:
    """One row per chain, newest first; cached rows for chains whose end is recorded."""
    rows: dict[str, dict[str, Any]] = {}
    rest = []
    for folder in state_dir.list():
        try:
            folder.check_safe()
        except LongrunError as exc:
            log.warning("skipped {}: {}", folder.path, exc.message)
            continue
        row = None if live_only else _cached_row(folder)
        if row is not None:
            rows[folder.chain_id] = row
        elif not live_only and folder.ended_file.exists():
            row = _ended_row(state_dir, folder)
            rows.update({row["chain_id"]: row} if row else {})
        else:
            rest.append(folder)
    for row in _rows_from_logs(state_dir, live_only, rest):  # the live ones: one squeue
        rows[row["chain_id"]] = row
    return [rows[chain_id] for chain_id in sorted(rows, reverse=True)]


def _cached_row(folder: ChainFolder) -> dict[str, Any] | None:
    """The cached row, if it is one as list_rows makes it (a row that is not would break the
    whole list)."""
    row = read_cached(folder, protocol.SUMMARY)
    if row is None or any(field not in row for field in ROW_FIELDS):
        return None
    epoch, elements = row["last_change_epoch"], row["elements"]
    if epoch is not None and not (type(epoch) is int and abs(epoch) <= protocol.MAX_NUMBER):
        return None
    return row if elements is None or isinstance(elements, dict) else None


def _ended_row(state_dir: StateDir, folder: ChainFolder) -> dict[str, Any] | None:
    """The row of a chain whose end is recorded, kept for the next time."""
    try:
        with reading(folder):
            row = cached_or_read(
                folder, protocol.SUMMARY, partial(_row, state_dir, folder), _itself
            )
    except LongrunError as exc:
        return _damaged_row(folder, exc.message)
    why = None if row else _damage(folder)  # no row: list_views skipped it
    return _damaged_row(folder, why) if why else row


def _rows_from_logs(
    state_dir: StateDir, live_only: bool, folders: Sequence[ChainFolder]
) -> list[dict[str, Any]]:
    """The rows of these chains from their logs, the live ones from one squeue call."""
    damaged: dict[str, str] = {}
    try:
        rows = list_rows(list_views(state_dir, live_only, folders))
    except Exception:  # a chain that cannot be read: find which, then read the others again
        damaged = {folder.chain_id: why for folder in folders if (why := _damage(folder))}
        readable = [folder for folder in folders if folder.chain_id not in damaged]
        rows = list_rows(list_views(state_dir, live_only, readable))
    listed = {row["chain_id"] for row in rows} | damaged.keys()
    for folder in folders:  # not listed: skipped (its chain.json), or (--live) it has ended
        if folder.chain_id not in listed:
            why = _damage(folder, whole=not (live_only and folder.ended_file.exists()))
            damaged.update({folder.chain_id: why} if why else {})
    by_id = {folder.chain_id: folder for folder in folders}
    return rows + [_damaged_row(by_id[chain_id], why) for chain_id, why in damaged.items()]


def _damage(folder: ChainFolder, whole: bool = True) -> str | None:
    """Why the chain cannot be read (as list_views reads it, without Slurm; not whole: its
    chain.json only), or None."""
    try:
        with reading(folder):
            folder.read_meta()
            if whole:
                list_rows([read_view(folder, ask_slurm=False)])
    except LongrunError as exc:
        return exc.message
    return None


def _damaged_row(folder: ChainFolder, why: str) -> dict[str, Any]:
    """The row of a chain that cannot be read: its state says so, its reason why."""
    return {
        "chain_id": folder.chain_id, "job_name": "", "state": states.CHAIN_DAMAGED, "links": 0,
        "elements": None, "current_job": None, "created": "", "last_change": None,
        "last_change_epoch": None, "reason": why,
    }  # fmt: skip


def _row(state_dir: StateDir, folder: ChainFolder) -> dict[str, Any] | None:
    """The row of one chain whose end is recorded (no question to Slurm)."""
    rows = list_rows(list_views(state_dir, checked=[folder]))
    return rows[0] if rows else None


def _itself(row: dict[str, Any] | None) -> dict[str, Any]:
    return row or {}
