"""The rows of `longrun list`. A chain that ended long ago no longer changes, so its row is kept
in its folder (summary.json, written once by the first `longrun list` that sees it settled) and
read back instead of its event logs: a long list of old chains costs one small file each."""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any

from . import log, protocol, states
from .chain_ops import list_views
from .chain_store import ChainFolder, StateDir, create_once
from .errors import LongrunError
from .report import list_rows

# After its end is recorded, a chain's last link may still log its successor's cancel, and a
# straggling successor its skipped body: well within this time.
SETTLED_SECONDS = 600


def _link_count(folder: ChainFolder) -> int:
    with contextlib.suppress(FileNotFoundError):
        return sum(1 for _ in os.scandir(folder.path / protocol.LINKS))
    return 0


def _kept_row(folder: ChainFolder) -> dict[str, Any] | None:
    """The kept row, if there is one and no link has appeared since it was written."""
    try:
        kept = json.loads((folder.path / protocol.SUMMARY).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(kept, dict) or kept.get("links_entries") != _link_count(folder):
        return None
    row = kept.get("row")
    return row if isinstance(row, dict) else None


def _keep_row(folder: ChainFolder, row: dict[str, Any], now: float) -> None:
    """Write the row once, if the chain ended more than SETTLED_SECONDS ago."""
    try:
        if now - folder.ended_file.stat().st_mtime < SETTLED_SECONDS:
            return
        text = json.dumps({"row": row, "links_entries": _link_count(folder)})
        create_once(folder.path / protocol.SUMMARY, text + "\n")
    except OSError as exc:  # someone else's state folder, read-only: just not kept
        log.debug("list row of {} not kept: {}", folder.chain_id, exc)


def list_rows_of(state: StateDir, live_only: bool = False) -> list[dict[str, Any]]:
    """One row per chain, newest first; kept rows for chains that ended long ago."""
    now = time.time()
    rows: dict[str, dict[str, Any]] = {}
    rest = []
    for folder in state.list():
        try:
            folder.check_safe()
        except LongrunError as exc:
            log.warning("skipped {}: {}", folder.path, exc.message)
            continue
        row = None if live_only else _kept_row(folder)
        if row is None:
            rest.append(folder)
        else:
            rows[folder.chain_id] = row
    by_id = {folder.chain_id: folder for folder in rest}
    for row in list_rows(list_views(state, live_only, rest)):
        rows[row["chain_id"]] = row
        if row["state"] in states.CHAIN_END_STATES:
            _keep_row(by_id[row["chain_id"]], row, now)
    return [rows[chain_id] for chain_id in sorted(rows, reverse=True)]
