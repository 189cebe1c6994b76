"""The rows of `longrun list`: kept rows (longrun/kept.py) for chains that ended long ago,
so that a long list of old chains costs one small file each; the others from their logs."""

from __future__ import annotations

import time
from typing import Any

from . import log, protocol, states
from .chain_ops import list_views
from .chain_store import StateDir
from .errors import LongrunError
from .kept import keep, read_kept
from .report import list_rows


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
        row = None if live_only else read_kept(folder, protocol.SUMMARY)
        if row is None:
            rest.append(folder)
        else:
            rows[folder.chain_id] = row
    by_id = {folder.chain_id: folder for folder in rest}
    for row in list_rows(list_views(state, live_only, rest)):
        rows[row["chain_id"]] = row
        if row["state"] in states.CHAIN_END_STATES:
            keep(by_id[row["chain_id"]], protocol.SUMMARY, row, now)
    return [rows[chain_id] for chain_id in sorted(rows, reverse=True)]
