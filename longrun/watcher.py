"""The optional watcher: reports a chain's progress, enforces --max-restarts, repairs a gap.

The chain does not need it: every link queues its own successor. The watcher follows the
chain's event log (a local file, read every few seconds) and asks Slurm with one squeue call at
most every 30 s while a link runs, every 60 s while one waits; it never polls sacct.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, cast

from . import protocol, states
from .array_view import ArrayView, elements_of, elements_of_jobs
from .chain_actions import (
    MAX_REPAIRS,
    enforce_max_restarts,
    record_end,
    repair,
    repair_refused,
    settle_from_accounting,
)
from .chain_reading import live_array_view, live_view, read_view
from .chain_store import ChainFolder, EventTail, StateDir
from .chain_view import ChainView
from .errors import LongrunError, RepairRefused
from .keeper import CHAIN_ERRORS, keep_chain
from .protocol import Event
from .report import duration, event_line, progress_line


@dataclass(frozen=True)
class WatchSettings:
    running_interval: float = 30.0  # squeue while a link runs
    waiting_interval: float = 60.0  # squeue while a link waits in the queue
    log_interval: float = 2.0  # read the event log
    settle_delay: float = 5.0  # after the log shows a link ended, ask Slurm this soon
    plain_status_interval: float = 600.0  # a status line when the output is not a terminal

    @classmethod
    def from_env(cls) -> WatchSettings:
        """Intervals may be shortened for tests with LONGRUN_WATCH_*_SECONDS."""

        def get(field: str) -> float:
            raw = os.environ.get(f"LONGRUN_WATCH_{field.split('_')[0].upper()}_SECONDS")
            return float(raw) if raw else getattr(cls, field)

        return cls(
            **{
                name: get(name)
                for name in ("running_interval", "waiting_interval", "log_interval", "settle_delay")
            }
        )


class Output:
    """Event lines, plus a progress line rewritten in place when writing to a terminal."""

    def __init__(self, stream: Any = None, verbose: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.verbose = verbose
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._progress = False

    def line(self, text: str) -> None:
        self._clear()
        stamp = time.strftime("%H:%M:%S")
        self.stream.write(f"[{stamp}] {text}\n")
        self.stream.flush()

    def progress(self, text: str) -> None:
        if not self.tty:
            return
        self.stream.write("\r\033[K" + text)
        self.stream.flush()
        self._progress = True

    def _clear(self) -> None:
        if self._progress:
            self.stream.write("\r\033[K")
            self._progress = False


class Stop(BaseException):
    """The watcher was told to stop (closed terminal, SIGTERM). Like KeyboardInterrupt, no
    `except Exception` may take it for an error (reading a chain turns those into
    StateError, which the watcher reports and goes on after)."""


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


def watch(
    folder: ChainFolder,
    state_dir: StateDir,
    *,
    settings: WatchSettings | None = None,
    output: Output | None = None,
    replay: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Follow the chain (an array: every element) until it ends; return its end state."""
    settings, out, tail, max_restarts = _begin(folder, settings, output, replay)
    if folder.read_meta().is_array:
        return _watch_array(
            folder, state_dir, settings, out, tail, max_restarts, replay, clock, sleep
        )
    view = live_view(folder)
    if not replay:
        out.line(f"Watching chain {folder.chain_id}: {view.state} - {view.reason}")
    next_query = clock() + _interval(view, settings)
    last_plain = clock()
    memory = WatchMemory()
    # Whether the event of the chain's end was read: the log is followed from its end, so an
    # end recorded before this watch began counts as told.
    told = folder.ended() is not None
    while True:
        kinds = _report(tail, out, max_restarts)
        told = told or bool(kinds & END_EVENTS)
        link_ended = bool(kinds & LINK_END_EVENTS)
        if protocol.SUCCESSOR_REQUESTED in kinds:  # at once: the link runs without one
            _keep(folder, state_dir, out)
        if folder.ended():
            _report_the_end(tail, out, max_restarts, told, clock, sleep)
            return _finish(folder, out)
        now = clock()
        if link_ended:
            # The next link starts (or should) at once: look soon rather than in 30 s.
            next_query = min(next_query, now + settings.settle_delay)
        if now >= next_query:
            view = cast(ChainView, _check(folder, state_dir, out, memory))  # (a plain chain's)
            if view.state in states.CHAIN_END_STATES:
                _report_the_end(tail, out, max_restarts, told, clock, sleep)
                return _finish(folder, out)
            next_query = now + _interval(view, settings)
        elif out.tty:
            view = live_view(folder, ask_slurm=False)
        last_plain = _progress(out, progress_line(view), now, last_plain, settings)
        sleep(settings.log_interval)


def _begin(
    folder: ChainFolder, settings: WatchSettings | None, output: Output | None, replay: bool
) -> tuple[WatchSettings, Output, EventTail, int]:
    """What every watch starts with: its settings, its output, the event log to follow (from
    the start with `replay`), and the chain's --max-restarts."""
    tail = EventTail(folder, from_end=not replay)
    max_restarts = folder.read_meta().max_restarts
    return settings or WatchSettings.from_env(), output or Output(), tail, max_restarts


def _progress(
    out: Output, text: str, now: float, last_plain: float, settings: WatchSettings
) -> float:
    """The progress line: in place on a terminal, else every plain_status_interval; returns
    when a plain line was last written."""
    out.progress(text)
    if not out.tty and now - last_plain >= settings.plain_status_interval:
        out.line(text)
        return now
    return last_plain


def _report(tail: EventTail, out: Output, max_restarts: int) -> set[str]:
    """Print the new events of the log; return their kinds."""
    kinds = set()
    for event in tail.read():
        text = event_line(event, max_restarts, out.verbose)
        if text:
            out.line(text)
        kinds.add(str(event.kind))
    return kinds


END_EVENTS = frozenset({protocol.CHAIN_ENDED, protocol.CHAIN_END_KEPT})
END_EVENT_SECONDS = 3.0


def _report_the_end(
    tail: EventTail,
    out: Output,
    max_restarts: int,
    told: bool,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> None:
    """Print the last events: the chain's end is a file its recorder writes just before the
    event that says why, so wait a moment for that event unless it was `told` already
    (END_EVENT_SECONDS at most)."""
    deadline = clock() + END_EVENT_SECONDS
    while not _report(tail, out, max_restarts) & END_EVENTS and not told:
        if clock() >= deadline:
            return
        try:
            sleep(0.2)
        except TimeoutError:  # the caller's own deadline (longrun.Chain.wait): the end stands
            return


LINK_END_EVENTS = frozenset(
    {protocol.BODY_EXITED, protocol.SIGTERM, protocol.VERDICT_RECORDED, protocol.CHAIN_ENDED}
)


def _interval(view: ChainView | ArrayView, settings: WatchSettings) -> float:
    running = view.state == states.CHAIN_RUNNING
    return settings.running_interval if running else settings.waiting_interval


@dataclass
class WatchMemory:
    """What one watcher remembers between its looks at Slurm, whatever the folder says."""

    # (link, its successor on record) pairs sacct answered about: a successor queued by a
    # repair is asked about again (you may cancel it too).
    asked_sacct: set[tuple[str, str]] = field(default_factory=set)
    silent_sacct: set[str] = field(default_factory=set)  # links told about a silent sacct
    repairs: Counter[str] = field(default_factory=Counter)  # link -> successors it submitted
    refused: set[str] = field(default_factory=set)  # links whose refusal was recorded


def _check(
    folder: ChainFolder, state_dir: StateDir, out: Output, memory: WatchMemory
) -> ChainView | ArrayView:
    """One look at Slurm (one squeue call, for an array's elements too): then, for each
    element (a plain chain is an array of one), enforce the limit, repair a gap, notice an end.

    sacct is asked once per job that answers, only when nothing is queued and the last link's
    end is not known; a chain is repaired only after sacct answered about its last link (its
    successor may have been cancelled by you and left the queue). A repair looks at the queue
    once more under the chain's lock.
    """
    _keep(folder, state_dir, out)
    try:
        view = read_view(folder)
        settled = False
        for index, element in elements_of(view).items():
            # An ended element's links are no longer asked of squeue: their states are stale.
            if index is None or element.is_live:
                enforce_max_restarts(folder, element)
            if element.state == states.CHAIN_STALLED:
                settled = _settle(folder, element, out, memory) or settled
        if settled:
            view = read_view(folder, ask_slurm=False)
        stalled = {i: e for i, e in elements_of(view).items() if e.state == states.CHAIN_STALLED}
        if any([_repair_once(folder, state_dir, memory, e, i) for i, e in stalled.items()]):
            view = read_view(folder, ask_slurm=False)
        for index, element in elements_of(view).items():
            record_end(folder, element, by="watcher", element=index)
        return view
    except LongrunError as exc:
        out.line(f"warning: could not ask Slurm about the chain: {exc}")
        return read_view(folder, ask_slurm=False)


def _keep(folder: ChainFolder, state_dir: StateDir, out: Output) -> None:
    """Be the keeper of this chain (README: Sites that forbid submission from compute nodes):
    queue a successor a link left to one."""
    try:
        keep_chain(folder, state_dir, by="watcher")
    except CHAIN_ERRORS as exc:  # a damaged file: said, and the watch goes on
        out.line(f"warning: could not queue a requested successor: {exc}")


def _settle(folder: ChainFolder, view: ChainView, out: Output, memory: WatchMemory) -> bool:
    """Ask sacct about a stalled chain's (or element's) last link once it answers; True if
    that recorded an end. While it does not answer, say so once."""
    last = view.links[-1] if view.links else None
    if last is None or (last.job_id, view.successor_job or "") in memory.asked_sacct:
        return False
    settled = settle_from_accounting(folder, view)
    if settled is None:
        if last.job_id not in memory.silent_sacct:
            memory.silent_sacct.add(last.job_id)
            out.line(
                f"warning: sacct did not answer about job {last.job_id}: nothing is repaired "
                "until it does (its successor may have been cancelled)"
            )
        return False
    memory.asked_sacct.add((last.job_id, view.successor_job or ""))
    return settled


def _repair_once(
    folder: ChainFolder,
    state_dir: StateDir,
    memory: WatchMemory,
    view: ChainView,
    element: int | None = None,
) -> bool:
    """Repair a stalled chain (or element) once sacct answered about its last link, within
    the chain's bound (chain_actions.refuse_another_repair) and this watcher's own; a refusal is
    recorded as an event, once. True if a successor was submitted."""
    last = view.links[-1] if view.links else None
    asked = last is not None and (last.job_id, view.successor_job or "") in memory.asked_sacct
    if last is None or not asked or last.job_id in memory.refused:
        return False
    try:
        if memory.repairs[last.job_id] >= MAX_REPAIRS:
            raise repair_refused(last.job_id, f"{MAX_REPAIRS} repairs")
        submitted = repair(folder, state_dir, element)
    except RepairRefused as exc:
        memory.refused.add(last.job_id)
        folder.append_event(
            protocol.REPAIR_REFUSED, job=last.job_id, reason=exc.message, element=element
        )
        return False
    if submitted:
        memory.repairs[last.job_id] += 1
    return submitted is not None


def _watch_array(
    folder: ChainFolder,
    state_dir: StateDir,
    settings: WatchSettings,
    out: Output,
    tail: EventTail,
    max_restarts: int,
    replay: bool,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> str:
    """Follow an array chain until every element has ended; return the array's end state.

    One squeue call per interval for the whole array; a line per ended element and a progress
    line (each element's events only when verbose).
    """
    view = live_array_view(folder)
    if not replay:
        out.line(f"Watching array chain {folder.chain_id}: {view.state} - {view.reason}")
    reported = set() if replay else {i for i, e in view.elements.items() if not e.is_live}
    elements: dict[str, int] = {}
    next_query = clock() + _interval(view, settings)
    last_plain = clock()
    memory = WatchMemory()
    while True:
        events = tail.read()
        elements.update(elements_of_jobs([*events, *_as_links(elements)]))
        if any(event.kind == protocol.SUCCESSOR_REQUESTED for event in events):
            _keep(folder, state_dir, out)
        if out.verbose:
            for event in events:
                text = event_line(event, max_restarts, verbose=True)
                element = elements.get(event.text("job"))
                if text:
                    out.line(text if element is None else f"Element {element}: {text}")
        now = clock()
        if any(event.kind in LINK_END_EVENTS for event in events):
            next_query = min(next_query, now + settings.settle_delay)
        if now >= next_query:
            view = cast(ArrayView, _check(folder, state_dir, out, memory))  # (an array's folder)
            next_query = now + _interval(view, settings)
        elif events:
            view = live_array_view(folder, ask_slurm=False)
        for index, element_view in view.elements.items():
            if not element_view.is_live and index not in reported:
                reported.add(index)
                out.line(
                    f"Element {index} ended {element_view.state} after "
                    f"{len(element_view.links)} link(s): {element_view.reason}"
                )
        if not view.is_live:
            out.line(f"Array chain {folder.chain_id} {view.state}: {view.reason}")
            return view.state
        progress = f"[array job {view.array_job}] {view.state}: {view.reason}"
        last_plain = _progress(out, progress, now, last_plain, settings)
        sleep(settings.log_interval)


def _as_links(elements: dict[str, int]) -> list[Event]:
    """Known job -> element pairs as link_started events, to carry them across reads."""
    return [
        Event({"event": protocol.LINK_STARTED, "job": job, "element": element})
        for job, element in elements.items()
    ]


def _finish(folder: ChainFolder, out: Output) -> str:
    view = live_view(folder, ask_slurm=False)
    out.line(
        f"Chain {folder.chain_id} {view.state}: {len(view.links)} link(s), "
        f"run time {duration(view.total_run_seconds)}"
    )
    return view.state


def watch_until_end(
    folder: ChainFolder, state_dir: StateDir, verbose: bool, *, replay: bool = False
) -> int:
    """Watch in the foreground; exit status 0 only for a chain that completed.

    `replay` reports the chain's events from its start (right after submission); otherwise
    the watcher says where the chain stands and reports what happens from now on.
    Ctrl-C, a closed terminal or SIGTERM stop the watcher only: the chain goes on.
    """
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGHUP, signal.SIGTERM)}
    out = Output(verbose=verbose)
    try:
        final = watch(folder, state_dir, output=out, replay=replay)
    except (KeyboardInterrupt, Stop) as why:
        name = "Ctrl-C" if isinstance(why, KeyboardInterrupt) else str(why)
        with contextlib.suppress(OSError):  # the terminal may be gone
            out.line(
                f"Stopped watching ({name}); the chain goes on without the watcher. "
                f"Watch it again with: longrun watch {folder.chain_id}"
            )
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if final == states.CHAIN_COMPLETED else 1


def start_detached(folder: ChainFolder, state_dir: StateDir, verbose: bool) -> tuple[int, Path]:
    """A watcher in its own session, without a terminal, logging to the chain folder."""
    log_path = folder.watch_log
    # `python -m` puts the working directory first on sys.path: anyone who can write to the
    # submit directory could plant a module there. The watcher runs in the chain folder (the
    # user's own, private) and, where Python has it, with -P (no such directory on the path).
    safe_path = ["-P"] if sys.version_info >= (3, 11) else []
    command = [
        sys.executable, *safe_path, "-m", "longrun", "watch", folder.chain_id,
        "--state-dir", str(state_dir.root.absolute()), "--from-start",
    ]  # fmt: skip
    if verbose:
        command.append("--verbose")
    with open(log_path, "a") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd=folder.path,
        )
    folder.set_watcher_pid(process.pid)
    return process.pid, log_path
