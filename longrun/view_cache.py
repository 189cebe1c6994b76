"""A cache of views of chains whose end is recorded: `longrun list` keeps its row
(summary.json) and `longrun status` its view (view.json) in the chain folder, with a stamp of
what they were read from: the size of every event file and of the `ended` file, and when the
folders that new files appear in last changed. A cached file is read back instead of the logs
only while its stamp still matches: a late event, a new link or a new writer makes the next
command read the logs again and cache anew (the file is replaced whole)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from typing import Any, TypeVar

from . import log, protocol
from .chain_store import ChainFolder
from .chain_view import ChainView, LinkView
from .files import read_regular

T = TypeVar("T")
Stamp = dict[str, int]

# The folders new event files appear in (stamped by modification time, -1 while missing).
FOLDERS = (protocol.LINKS, protocol.EVENTS_DIR, protocol.ELEMENTS)
# A folder that changed this shortly before a stamp was taken may change again unseen within
# its file system's time resolution (a second on some): such a stamp is not kept.
RACY_NS = 2_000_000_000


def _stat(path: str, by_time: bool) -> int:
    try:
        info = os.stat(path)
    except OSError:  # missing (or unreadable: then it is read the same way each time)
        return -1
    return info.st_mtime_ns if by_time else info.st_size


def stamp_of(folder: ChainFolder) -> Stamp | None:
    """The stamp of the chain's files now; None while no end is recorded."""
    top = str(folder.path)
    stamp = {protocol.ENDED: _stat(f"{top}/{protocol.ENDED}", by_time=False)}
    if stamp[protocol.ENDED] < 0:
        return None
    stamp |= {f"{name}/": _stat(f"{top}/{name}", by_time=True) for name in FOLDERS}
    stamp[protocol.EVENTS] = _stat(f"{top}/{protocol.EVENTS}", by_time=False)
    for path in folder.event_files():
        name = path[len(top) + 1 :]
        stamp[name] = _stat(path, by_time=False)
        if stamp[name] < 0:  # a link with no events yet: its folder shows when they come
            parent = os.path.dirname(name) + "/"
            stamp[parent] = _stat(f"{top}/{parent}", by_time=True)
    return stamp


def _stamp_matches(folder: ChainFolder, stamp: Stamp) -> bool:
    top = str(folder.path)
    return all(
        _stat(f"{top}/{name}", by_time=name.endswith("/")) == value for name, value in stamp.items()
    )


def read_cached(folder: ChainFolder, name: str) -> dict[str, Any] | None:
    """The kept data, if there is some and nothing has changed since it was read."""
    try:
        kept = json.loads(read_regular(str(folder.path / name)))
    except (OSError, ValueError, RecursionError):  # missing, or not as longrun keeps it
        return None
    if not isinstance(kept, dict) or not isinstance(kept.get("stamp"), dict):
        return None  # kept by an earlier version
    data = kept.get("data")
    if not isinstance(data, dict) or not _stamp_matches(folder, kept["stamp"]):
        return None
    return data


def cached_or_read(
    folder: ChainFolder, name: str, read: Callable[[], T], data_of: Callable[[T], dict[str, Any]]
) -> T:
    """What `read` returns for the chain; kept as `name` (unless None) when the chain's end
    was recorded before the read and nothing changed during it."""
    before = stamp_of(folder)
    result = read()
    if before is not None and result is not None and _stamp_matches(folder, before):
        _keep(folder, name, data_of(result), before)
    return result


def _keep(folder: ChainFolder, name: str, data: dict[str, Any], stamp: Stamp) -> None:
    path = folder.path / name
    tmp = path.with_name(f".{name}.{os.uname().nodename}.{os.getpid()}.tmp")
    try:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # never written through a link put in its place
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps({"data": data, "stamp": stamp}) + "\n")
            handle.flush()
            written = os.fstat(fd).st_mtime_ns  # the file system's clock, as the folders' times
        times = [value for key, value in stamp.items() if key.endswith("/") and value >= 0]
        if any(written - value < RACY_NS for value in times):
            return
        os.replace(tmp, path)
    except OSError as exc:  # someone else's state folder, read-only: just not kept
        log.debug("{} of {} not kept: {}", name, folder.chain_id, exc)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def cached_view(folder: ChainFolder) -> ChainView | None:
    """The kept view of a chain (not an array), for `longrun status`."""
    data = read_cached(folder, protocol.KEPT_VIEW)
    if data is None:
        return None
    try:
        links = [LinkView(**link) for link in data.pop("links")]
        return ChainView(**data, links=links)
    except (KeyError, TypeError) as exc:  # written by another version: read the logs
        log.debug("kept view of {} not used: {}", folder.chain_id, exc)
        return None


def view_data(view: ChainView) -> dict[str, Any]:
    """The view as kept: every field is a plain value, the links too."""
    return {**vars(view), "links": [dict(vars(link)) for link in view.links]}
