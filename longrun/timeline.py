"""`longrun status --timeline`: the chain drawn on the terminal, one bar per link on a shared
time axis (an array: one row per element), coloured by how each link ended, with the time spent
waiting in the queue between links visible and summed. A pure function of the view."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

from . import states
from .array_view import ArrayView
from .chain_view import ChainView, LinkView
from .report import duration

# kind of link -> (plain character, ANSI colour)
GLYPHS = {
    states.KIND_COMPLETED: ("C", "32"),  # green
    states.KIND_CONTINUED: ("c", "36"),  # cyan
    states.KIND_TIME_LIMIT: ("T", "33"),  # yellow
    states.KIND_PREEMPTED: ("P", "35"),  # magenta
    states.KIND_NODE_FAILURE: ("N", "34"),  # blue
    states.KIND_FAILED: ("F", "31"),  # red
    states.KIND_CANCELLED: ("X", "90"),  # grey
    states.KIND_RUNNING: ("R", "1;37"),  # bright white
    states.KIND_UNKNOWN: ("?", "37"),
}
WAIT = "."  # waiting in the queue
LABEL = 11  # "link 1000 " / "elem 12   ": the label column


def _epoch(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp() if text else None
    except ValueError:
        return None


def _kind(link: LinkView) -> str:
    return states.link_kind(link.state, link.verdict, link.preempted)


def _spans(
    links: Sequence[LinkView], waiting_since: float | None, now: float
) -> list[tuple[float, float, str]]:
    """(begin, end, kind) for each wait in the queue (from `waiting_since`) and each run."""
    spans = []
    for link in links:
        if link.start_epoch is None:
            if waiting_since is not None and states.is_pending(link.state):
                spans.append((waiting_since, now, WAIT))
            continue
        if waiting_since is not None and link.start_epoch > waiting_since:
            spans.append((waiting_since, float(link.start_epoch), WAIT))
        end = float(link.end_epoch) if link.end_epoch is not None else now
        spans.append((float(link.start_epoch), end, _kind(link)))
        waiting_since = end
    return spans


def _bar(spans: Sequence[tuple[float, float, str]], t0: float, span: float, cells: int,
         color: bool) -> str:  # fmt: skip
    row = [" "] * cells
    kinds: list[str | None] = [None] * cells
    starts: set[int] = set()  # cells where a link begins right after one of its own kind
    for begin, end, kind in spans:
        first = min(int((begin - t0) / span * cells), cells - 1)
        last = max(first + 1, int((end - t0) / span * cells + 0.5))
        if kind != WAIT and 0 < first < last - 1 and kinds[first - 1] == kind:
            starts.add(first)
        for cell in range(max(0, first), min(cells, last)):
            # A run wins its cell over a wait that shares it.
            if kind != WAIT or kinds[cell] is None:
                kinds[cell] = kind
    for cell, found in enumerate(kinds):
        if found is None:
            continue
        if found == WAIT:
            row[cell] = "\033[2m·\033[0m" if color else WAIT
        elif cell in starts:
            row[cell] = "|"  # two links of the same kind stay two
        else:
            char, code = GLYPHS[found]
            row[cell] = f"\033[{code}m█\033[0m" if color else char
    return "".join(row)


def _totals(all_spans: Sequence[Sequence[tuple[float, float, str]]]) -> tuple[int, int]:
    run = sum(end - begin for spans in all_spans for begin, end, kind in spans if kind != WAIT)
    wait = sum(end - begin for spans in all_spans for begin, end, kind in spans if kind == WAIT)
    return int(run), int(wait)


def _legend(kinds: set[str], color: bool, width: int, boundaries: bool) -> list[str]:
    """The marks that appear, explained, in lines no wider than `width`."""
    parts = [(GLYPHS[kind], kind) for kind in states.LINK_KINDS if kind in kinds]
    parts.append(((WAIT, "2"), "waiting in the queue"))
    if boundaries:
        parts.append((("|", "0"), "the next link, of the same kind"))
    lines, line, used = [], "", 0
    for (char, code), words in parts:
        block = {WAIT: "·", "|": "|"}.get(char, "█")
        mark = f"\033[{code}m{block}\033[0m" if color else char
        if line and used + 2 + len(words) + 2 > width:
            lines.append(line)
            line, used = "", 0
        line += ("  " if line else "") + f"{mark} {words}"
        used += (2 if used else 0) + 2 + len(words)
    return [*lines, line]


def timeline_text(
    view: ChainView | ArrayView, *, width: int = 80, color: bool = False,
    now: float | None = None,
) -> str:  # fmt: skip
    """The chain (or array) as bars on one time axis, for a terminal `width` columns wide."""
    now = time.time() if now is None else now
    created = _epoch(view.created)
    if isinstance(view, ArrayView):
        rows = [(f"elem {index}", element.links) for index, element in view.elements.items()]
        title = f"Array chain {view.chain_id} ({view.job_name}): {view.state}"
    else:
        rows = [(f"link {link.number}", [link]) for link in view.links]
        title = f"Chain {view.chain_id} ({view.job_name}): {view.state}"
    all_spans = []
    waiting_since = created
    for _, links in rows:
        spans = _spans(links, waiting_since, now)
        all_spans.append(spans)
        if not isinstance(view, ArrayView) and spans:
            waiting_since = spans[-1][1]  # the next link waits from this one's end
    begins = [s[0] for spans in all_spans for s in spans]
    ends = [s[1] for spans in all_spans for s in spans]
    if not begins:
        return f"{title}\n(no link has started yet)\n"
    t0, t1 = min(begins), max(ends)
    span = max(t1 - t0, 1.0)
    cells = max(10, width - LABEL - 1)
    lines = [title]
    stamp = time.strftime("%m-%d %H:%M:%S", time.localtime(t0))
    end_stamp = time.strftime("%m-%d %H:%M:%S", time.localtime(t1))
    lines.append(" " * LABEL + stamp + end_stamp.rjust(cells - len(stamp)))
    kinds: set[str] = set()
    boundaries = False
    for (label, _), spans in zip(rows, all_spans):
        kinds |= {kind for _, _, kind in spans if kind != WAIT}
        bar = _bar(spans, t0, span, cells, color).rstrip()
        boundaries = boundaries or "|" in bar
        lines.append(label.ljust(LABEL) + bar)
    run, wait = _totals(all_spans)
    count = sum(len(links) for _, links in rows)
    summed = " (summed over the elements)" if isinstance(view, ArrayView) else ""
    lines.append(f"Running: {duration(run)} in {count} links{summed}")
    lines.append(f"Waiting in the queue: {duration(wait)}; first to last: {duration(int(t1 - t0))}")
    lines += _legend(kinds, color, width, boundaries)
    return "\n".join(lines) + "\n"
