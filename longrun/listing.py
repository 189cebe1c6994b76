"""The rows of `longrun list`: kept rows (longrun/kept.py) for chains whose end is recorded, so
that a long list of ended chains costs a few `stat` calls each; the others from their logs."""

from __future__ import annotations

from functools import partial
from typing import Any

from . import log, protocol
from .chain_ops import list_views
from .chain_store import ChainFolder, StateDir
from .errors import LongrunError
from .kept import kept_or_read, read_kept
from .report import list_rows


def list_rows_of(state: StateDir, live_only: bool = False) -> list[dict[str, Any]]:
    """One row per chain, newest first; kept rows for chains whose end is recorded."""
    rows: dict[str, dict[str, Any]] = {}
    rest = []
    for folder in state.list():
        try:
            folder.check_safe()
        except LongrunError as exc:
            log.warning("skipped {}: {}", folder.path, exc.message)
            continue
        row = None if live_only else read_kept(folder, protocol.SUMMARY)
        if row is not None:
            rows[folder.chain_id] = row
        elif not live_only and folder.ended_file.exists():
            row = kept_or_read(folder, protocol.SUMMARY, partial(_row, state, folder), _itself)
            rows.update({row["chain_id"]: row} if row else {})
        else:
            rest.append(folder)
    for row in list_rows(list_views(state, live_only, rest)):  # the live ones: one squeue
        rows[row["chain_id"]] = row
    return [rows[chain_id] for chain_id in sorted(rows, reverse=True)]


def _row(state: StateDir, folder: ChainFolder) -> dict[str, Any] | None:
    """The row of one chain whose end is recorded (no question to Slurm)."""
    rows = list_rows(list_views(state, checked=[folder]))
    return rows[0] if rows else None


def _itself(row: dict[str, Any] | None) -> dict[str, Any]:
    return row or {}
