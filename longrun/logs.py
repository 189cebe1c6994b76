"""One log for the whole chain: the output of every link in order, whatever --output/--error
patterns the user chose. Each link records the file Slurm opened for it and where its own
output begins (event link_started: output, output_offset, error, error_offset), so links that
append to one file are cut apart, and links with files of their own (%j) are read one by one."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from . import protocol
from .array_view import build_array_view
from .chain_store import ChainFolder, digits, reading
from .chain_view import ChainView, build_view
from .errors import UsageError
from .files import open_regular
from .protocol import Event, as_events

CHUNK = 1 << 16


@dataclass(frozen=True)
class Segment:
    """The part of a file that one link wrote: bytes [start, end) of path (end None: to the
    end of the file, for the last link that writes to it)."""

    link: int
    job_id: str
    title: str
    path: str | None
    start: int
    end: int | None
    recorded: bool = True  # False: a link of longrun before 0.3, which did not record its files


def segments(
    view: ChainView, events: Sequence[Mapping[str, Any]], stream: str = "output"
) -> list[Segment]:
    """Where each link's output (or error) is, from the links' own records."""
    events = as_events(events)
    started: dict[str, Event] = {}
    for event in events:
        if event.kind == protocol.LINK_STARTED:
            started.setdefault(event.job, event)
    found = []
    for link in view.links:
        record = started.get(link.job_id, Event())
        path = record.text(stream) or None
        start = digits(record.text(f"{stream}_offset")) or 0
        found.append((link, path, start, stream in record))
    result = []
    for index, (link, path, start, recorded) in enumerate(found):
        later = [s for _, p, s, _ in found[index + 1 :] if p == path and path is not None]
        end = later[0] if later else None
        title = f"{view.label(link)}, job {link.job_id}: {link.state}"
        if link.why:
            title += f" ({link.why})"
        result.append(Segment(link.number, link.job_id, title, path, start, end, recorded))
    return result


def header(segment: Segment) -> str:
    if segment.path:
        where = segment.path
    elif segment.recorded:
        where = "no file (/dev/null, a terminal or a pipe)"
    else:
        where = "no output file recorded (a link of longrun before 0.3)"
    return f"==> {segment.title} - {where} <==\n"


def copy_segment(segment: Segment, out: TextIO, report_missing: bool = True) -> int:
    """Write the segment's bytes (as text) to out; returns where reading stopped. A symbolic
    link, FIFO or device is not read (see open_regular): the path is a link's own record.
    Without report_missing (--follow, after the first read) a missing or unreadable file is
    not told again."""
    if segment.path is None:
        return segment.start
    if not report_missing and not Path(segment.path).exists():
        return segment.start
    try:
        with os.fdopen(open_regular(segment.path), "rb") as handle:
            handle.seek(segment.start)
            position = segment.start
            while segment.end is None or position < segment.end:
                want = CHUNK if segment.end is None else min(CHUNK, segment.end - position)
                data = handle.read(want)
                if not data:
                    break
                out.write(data.decode(errors="replace"))
                position += len(data)
            return position
    except FileNotFoundError:
        out.write(f"(the file {segment.path} is gone)\n")
    except OSError as exc:
        if report_missing:
            out.write(f"(cannot read {segment.path}: {exc.strerror})\n")
    return segment.start


def print_logs(segments_: Sequence[Segment], out: TextIO, link: int | None = None) -> None:
    for segment in segments_:
        if link is None or segment.link == link:
            out.write(header(segment))
            copy_segment(segment, out)
    out.flush()


def follow(
    read: Callable[[], tuple[ChainView, list[Segment]]],
    out: TextIO,
    *,
    interval: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Print every link's output, then keep printing what is written, like `tail -f` across
    jobs: a new link's output follows its header as soon as the link starts. Returns when the
    chain has ended and its last link's output has been read twice without growing."""
    shown: dict[int, int] = {}  # link number -> position read up to
    noted: set[int] = set()  # links whose missing file was reported
    quiet_reads = 0
    while True:
        view, found = read()
        grew = False
        for segment in found:
            if segment.link not in shown:
                out.write(header(segment))
                shown[segment.link] = segment.start
            position = shown[segment.link]
            limit = segment.end
            if limit is not None and position >= limit:
                continue
            current = replace(segment, start=position, end=limit)
            reached = copy_segment(current, out, report_missing=segment.link not in noted)
            noted.add(segment.link)
            grew = grew or reached > position
            shown[segment.link] = reached
        out.flush()
        quiet_reads = 0 if grew else quiet_reads + 1
        if not view.is_live and quiet_reads >= 2:
            return
        sleep(interval)


def read_chain(
    folder: ChainFolder, element: int | None, stream: str
) -> tuple[ChainView, list[Segment]]:
    """The chain (or array element) from its event logs alone, and where its links' output is."""
    with reading(folder):
        return _read_chain(folder, element, stream)


def _read_chain(
    folder: ChainFolder, element: int | None, stream: str
) -> tuple[ChainView, list[Segment]]:
    meta, events, ended = folder.read_meta(), folder.read_events(), folder.ended()
    if not meta.is_array:
        if element is not None:
            raise UsageError(f"chain {folder.chain_id} is not an array: it has no --element")
        view = build_view(meta, events, ended)
        return view, segments(view, events, stream)
    array = build_array_view(meta, events, ended, folder.element_ends())
    if element is None or element not in array.elements:
        raise UsageError(
            f"chain {folder.chain_id} is an array: whose output? "
            f"(elements {', '.join(str(i) for i in array.elements)})",
            f"Name one: `longrun logs {folder.chain_id} --element N` or ARRAYJOB_N.",
        )
    view = array.elements[element]
    return view, segments(view, events, stream)


def show(
    folder: ChainFolder, out: TextIO, *, element: int | None = None, link: int | None = None,
    stderr: bool = False, follow_: bool = False,
) -> None:  # fmt: skip
    """`longrun logs`: every link's output (or error) in order, or one link's; --follow."""
    stream = "error" if stderr else "output"
    _, found = read_chain(folder, element, stream)
    if link is not None and all(segment.link != link for segment in found):
        raise UsageError(
            f"chain {folder.chain_id} has no link {link} (links 1 to {len(found)})"
            if found else f"chain {folder.chain_id} has no link yet"
        )  # fmt: skip
    if not follow_:
        print_logs(found, out, link)
        return

    def read() -> tuple[ChainView, list[Segment]]:
        view, found = read_chain(folder, element, stream)
        return view, [s for s in found if link is None or s.link == link]

    follow(read, out)
