"""What the read-only commands keep for a chain that ended long ago: such a chain no longer
changes, so `longrun list` keeps its row (summary.json) and `longrun status` its view
(view.json) in the chain folder, written once by the first command that sees it settled, and
read back instead of its event logs. A kept file is ignored once a link appears after it."""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any

from . import log, protocol
from .chain_store import ChainFolder, create_once
from .chain_view import ChainView, LinkView

# After its end is recorded, a chain's last link may still log its successor's cancel, and a
# straggling successor its skipped body: well within this time.
SETTLED_SECONDS = 600


def _link_count(folder: ChainFolder) -> int:
    with contextlib.suppress(FileNotFoundError):
        return sum(1 for _ in os.scandir(folder.path / protocol.LINKS))
    return 0


def read_kept(folder: ChainFolder, name: str) -> dict[str, Any] | None:
    """The kept data, if there is some and no link has appeared since it was written."""
    try:
        kept = json.loads((folder.path / name).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(kept, dict) or kept.get("links_entries") != _link_count(folder):
        return None
    data = kept.get("data")
    return data if isinstance(data, dict) else None


def settled(folder: ChainFolder, now: float | None = None) -> bool:
    """Whether the chain's end was recorded more than SETTLED_SECONDS ago."""
    try:
        ended_at = folder.ended_file.stat().st_mtime
    except OSError:
        return False
    return (time.time() if now is None else now) - ended_at >= SETTLED_SECONDS


def keep(folder: ChainFolder, name: str, data: dict[str, Any], now: float | None = None) -> None:
    """Write the data once, if the chain has settled."""
    if not settled(folder, now):
        return
    try:
        text = json.dumps({"data": data, "links_entries": _link_count(folder)})
        create_once(folder.path / name, text + "\n")
    except OSError as exc:  # someone else's state folder, read-only: just not kept
        log.debug("{} of {} not kept: {}", name, folder.chain_id, exc)


def kept_view(folder: ChainFolder) -> ChainView | None:
    """The kept view of a chain (not an array) that ended long ago, for `longrun status`."""
    data = read_kept(folder, protocol.KEPT_VIEW)
    if data is None:
        return None
    try:
        links = [LinkView(**link) for link in data.pop("links")]
        return ChainView(**data, links=links)
    except (KeyError, TypeError) as exc:  # written by another version: read the logs
        log.debug("kept view of {} not used: {}", folder.chain_id, exc)
        return None


def keep_view(folder: ChainFolder, view: ChainView) -> None:
    if settled(folder):  # the view is turned into data only when it will be kept
        links = [dict(vars(link)) for link in view.links]
        keep(folder, protocol.KEPT_VIEW, {**vars(view), "links": links})
