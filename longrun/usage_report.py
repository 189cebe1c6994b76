"""`longrun usage` for people: a table per link with the chain's totals, and a picture of the
chain on a time axis (SVG, standard library only). Pure functions of a ChainUsage."""

from __future__ import annotations

from xml.sax.saxutils import escape

from . import states
from .report import clock, duration, hours, table
from .usage import ChainUsage, LinkUsage, Totals


def memory(size: int | None) -> str:
    """Bytes as Slurm writes memory (K, M, G: powers of 1024)."""
    if size is None:
        return "-"
    for unit, scale in (("T", 2**40), ("G", 2**30), ("M", 2**20), ("K", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f}{unit}"
    return f"{size}B"


def usage_text(usage: ChainUsage) -> str:
    total = usage.total
    head = f"Chain {usage.chain_id} ({usage.job_name}): {usage.state}, {total.links} links"
    headers = ["link", "job", "ended", "queued", "elapsed", "cpu held", "cpu used",
               "gpu time", "max rss", "overhead"]  # fmt: skip
    if usage.array:
        headers.insert(0, "element")
    rows = [_link_row(link, usage.array) for link in usage.links]
    rows.append(_total_row("total", total, usage.array))
    parts = [head, table(headers, rows)]
    if usage.array:
        elements = [[str(i), *_total_row("", t, False)[3:]] for i, t in usage.elements().items()]
        parts.append("Per element:\n" + table(["element", *headers[4:]], elements))
    parts.append(
        f"In hours: {hours(total.cpu_allocated)} CPU hours held, {hours(total.cpu_used)} used"
        + (f", {hours(total.gpu_seconds)} GPU hours" if total.gpu_seconds else "")
        + "."
    )
    parts.append(overhead_text(total))
    missing = [link.job_id for link in usage.links if not link.recorded]
    if missing:
        parts.append(
            f"Not in Slurm's accounting (yet): job {', '.join(missing)}; their cost is not counted."
        )
    return "\n\n".join(parts)


def _link_row(link: LinkUsage, array: bool) -> list[str]:
    before, after = link.overhead
    row = [
        str(link.link), link.job_id, link.kind, duration(link.queued), duration(link.elapsed),
        duration(link.cpu_allocated), duration(round(link.cpu_used)),
        duration(link.gpu_seconds) if link.gpu_seconds else "-", memory(link.max_rss),
        duration(before + after) + ("" if link.ran_body or not link.recorded else " (no body)"),
    ]  # fmt: skip
    return [str(link.element), *row] if array else row


def _total_row(label: str, total: Totals, array: bool) -> list[str]:
    row = [
        label, "", "", duration(total.queued), duration(total.elapsed),
        duration(total.cpu_allocated), duration(round(total.cpu_used)),
        duration(total.gpu_seconds) if total.gpu_seconds else "-", memory(total.max_rss),
        duration(total.overhead),
    ]  # fmt: skip
    return ["", *row] if array else row


def overhead_text(total: Totals) -> str:
    """What longrun itself held, and the work at risk."""
    share = f" ({100 * total.overhead / total.elapsed:.1f}%)" if total.elapsed else ""
    lines = [
        f"Overhead (longrun's part of the allocation): {duration(total.overhead)} of "
        f"{duration(total.elapsed)}{share}: {duration(total.overhead_before)} before the "
        f"script started, {duration(total.overhead_after)} after it ended"
        + (
            f"; {total.without_body} link(s) ran no script ({duration(total.without_body_seconds)})"
            if total.without_body
            else ""
        )
        + "."
    ]
    if total.at_risk is None:
        lines.append(
            "Work at risk: not tracked (give --progress-file to see the work lost at each "
            "interruption)."
        )
    else:
        lines.append(
            f"Work at risk: {duration(total.at_risk)} of work since the last progress, summed "
            "over the interrupted links."
        )
    return "\n".join(lines)


# --- the picture --------------------------------------------------------------------------------
COLORS = {
    states.KIND_COMPLETED: "#2e7d32",
    states.KIND_CONTINUED: "#00838f",
    states.KIND_TIME_LIMIT: "#f9a825",
    states.KIND_PREEMPTED: "#8e24aa",
    states.KIND_NODE_FAILURE: "#1565c0",
    states.KIND_FAILED: "#c62828",
    states.KIND_CANCELLED: "#757575",
    states.KIND_RUNNING: "#455a64",
    states.KIND_UNKNOWN: "#bdbdbd",
}
ROW, BAR, LEFT, WIDTH = 28, 16, 90, 900


def usage_svg(usage: ChainUsage) -> str:
    """The chain's links on a time axis: a bar per link (its job's run, coloured by how it
    ended), a dashed line for the time each waited in the queue, a dark part for longrun's
    overhead, a black bar where Slurm interrupted it."""
    kinds = [link.kind for link in usage.links]
    spans = [
        (link, link.kind, link.start, link.end, _eligible(link))
        for link in usage.links
        if link.start is not None
    ]
    rows = sorted({link.element for link, *_ in spans}, key=lambda e: -1 if e is None else e)
    height = 60 + ROW * max(1, len(rows)) + 56
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH + LEFT + 20}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f"<title>longrun chain {escape(usage.chain_id)}</title>",
        f'<text x="10" y="20" font-size="14">Chain {escape(usage.chain_id)} '
        f"({escape(usage.job_name)}): {escape(usage.state)}, {len(usage.links)} links, "
        f"{duration(usage.total.elapsed)} elapsed</text>",
    ]
    if not spans:
        parts.append('<text x="10" y="50">No link has started yet.</text></svg>')
        return "\n".join(parts) + "\n"
    t0 = min(e if e is not None else s for _, _, s, _, e in spans if s is not None)
    t1 = max(end or start or t0 for _, _, start, end, _ in spans)
    scale = WIDTH / max(1, t1 - t0)

    def x(t: float) -> float:
        return round(LEFT + (t - t0) * scale, 1)

    for index, element in enumerate(rows):
        y = 40 + ROW * index
        label = "chain" if element is None else f"element {element}"
        parts.append(f'<text x="10" y="{y + BAR - 3}">{escape(label)}</text>')
        for link, kind, start, end, eligible in spans:
            if link.element != element or start is None:
                continue
            stop = end if end is not None else t1
            if eligible is not None and eligible < start:
                parts.append(
                    f'<line x1="{x(eligible)}" y1="{y + BAR / 2}" x2="{x(start)}" '
                    f'y2="{y + BAR / 2}" stroke="#9e9e9e" stroke-dasharray="2,2"/>'
                )
            title = (
                f"link {link.link}, job {link.job_id}: {link.state}, "
                f"{duration(link.elapsed)}, queued {duration(link.queued)}"
            )
            parts.append(
                f'<rect x="{x(start)}" y="{y}" width="{max(1.0, x(stop) - x(start))}" '
                f'height="{BAR}" fill="{COLORS.get(kind, "#bdbdbd")}" stroke="white">'
                f"<title>{escape(title)}</title></rect>"
            )
            before, after = link.overhead
            for begin, seconds in ((start, before), (stop - after, after)):
                if seconds:
                    parts.append(
                        f'<rect x="{x(begin)}" y="{y}" width="{max(1.0, seconds * scale)}" '
                        f'height="{BAR}" fill="black" fill-opacity="0.35"/>'
                    )
            if kind in states.INTERRUPTED_KINDS:
                parts.append(
                    f'<line x1="{x(stop)}" y1="{y - 3}" x2="{x(stop)}" y2="{y + BAR + 3}" '
                    'stroke="black" stroke-width="2"/>'
                )
    axis_y = 40 + ROW * len(rows)
    parts.append(
        f'<line x1="{LEFT}" y1="{axis_y}" x2="{LEFT + WIDTH}" y2="{axis_y}" stroke="#9e9e9e"/>'
        f'<text x="{LEFT}" y="{axis_y + 14}">{escape(clock(t0))}</text>'
        f'<text x="{LEFT + WIDTH}" y="{axis_y + 14}" text-anchor="end">{escape(clock(t1))}</text>'
    )
    legend_y = axis_y + 36
    used = [kind for kind in COLORS if kind in set(kinds)]
    offset = LEFT
    for kind in used:
        parts.append(
            f'<rect x="{offset}" y="{legend_y - 10}" width="12" height="12" fill="{COLORS[kind]}"/>'
            f'<text x="{offset + 16}" y="{legend_y}">{escape(kind)}</text>'
        )
        offset += 24 + 7 * len(kind)
    parts.append(
        f'<text x="{offset + 10}" y="{legend_y}">dark: longrun overhead; dashed: queued; '
        "bar: interruption</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _eligible(link: LinkUsage) -> int | None:
    return min((r.eligible for r in link.runs if r.eligible), default=None)
