"""The keeper: queues, from a login node, the successors that links may not submit themselves.

A link on a site whose compute nodes may not submit (or with --submit-from=login) writes its
successor's sbatch arguments and environment into `links/<job>/request` (built by the job
side's own code) and a `successor_requested` event. A keeper (the watcher, `longrun keeper`, or
cron running `longrun keeper --once`) reads it and queues it with `sbatch` while the link runs,
so the successor waits with --dependency=afterany on it as if the link had queued it itself.

The same protocol as everywhere: the tag in the successor's --comment is looked for before
every submission (a submission whose answer was lost is found, never made twice), the chain's
lock keeps two keepers apart, an unanswered squeue decides nothing, the keeper writes only its
own event file, and a chain that has ended gets no successor (one queued as it ended is
cancelled again; one that starts after the end runs nothing).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import log, protocol, slurm, states
from .array_view import elements_of_jobs
from .chain_actions import chain_lock, record_end, repair, settle_from_accounting
from .chain_reading import live_array_view, live_view
from .chain_store import ChainFolder, StateDir
from .errors import LongrunError, RepairRefused, SlurmCommandError, UsageError
from .protocol import as_events
from .slurm_output import TaggedRow
from .successor_request import read_request, submit_request

LINK_NUMBER = re.compile(r"[0-9]{1,9}")  # a link number as the job side writes it
# What one chain's trouble may raise; it must not stop the keeper for the other chains.
CHAIN_ERRORS = (LongrunError, OSError, ValueError)


@dataclass(frozen=True)
class Open:
    """A link whose successor was requested and is not known to be queued."""

    job_id: str
    tag: str
    element: int | None


def open_requests(folder: ChainFolder, events: Sequence[Mapping[str, Any]]) -> list[Open]:
    """The links whose successor a keeper still has to queue, as the events tell: requested,
    and no successor queued, found or started for them (an array: elements that have not
    ended)."""
    events = as_events(events)
    requested: dict[str, str] = {}
    known: set[str] = set()
    for event in events:
        kind = event.kind
        job = event.text("job")
        if kind == protocol.SUCCESSOR_REQUESTED and LINK_NUMBER.fullmatch(event.text("next")):
            requested[job] = str(event["next"])
        elif kind in protocol.SUCCESSOR_EVENTS:
            known.add(job)
        elif kind == protocol.LINK_STARTED and event.text("previous"):
            known.add(str(event["previous"]))
    elements = elements_of_jobs(events)
    ended = folder.element_ends()
    found = []
    for job, number in requested.items():
        if job in known or folder.successor(job):
            continue
        element = elements.get(job)
        if element is not None and element in ended:
            continue
        key = folder.chain_id if element is None else f"{folder.chain_id}_{element}"
        found.append(Open(job, protocol.link_tag(key, int(number)), element))
    return found


def keep_chain(
    folder: ChainFolder,
    state_dir: StateDir,
    by: str,
    queue: Sequence[TaggedRow] | None = None,
) -> list[str]:
    """Queue every successor this chain's links requested and nobody queued yet; the job ids.

    `queue`: the user's jobs as one `squeue --me` showed them (the keeper asks once for all
    chains); without it, asked here when a request is open. Nothing is decided without an
    answer from Slurm.
    """
    if folder.ended():
        return []
    pending = open_requests(folder, folder.read_events())
    if not pending:
        return []
    clusters = folder.read_meta().cluster_args()
    rows = list(queue) if queue is not None else _user_jobs(clusters)
    if rows is None:
        return []
    queued = []
    for request in pending:
        job = _keep_one(folder, state_dir, by, request, rows, clusters)
        if job:
            queued.append(job)
    return queued


def _keep_one(
    folder: ChainFolder,
    state_dir: StateDir,
    by: str,
    request: Open,
    rows: Sequence[TaggedRow],
    clusters: list[str],
) -> str | None:
    tagged = [row.job_id for row in rows if row.tag_matches(request.tag)]
    if tagged:  # queued by another keeper, or by an sbatch whose answer was lost
        _found(folder, request.job_id, tagged[0], by)
        return None
    link = next((row for row in rows if row.job_id == request.job_id), None)
    if link is None or not states.is_active(link.state):
        return _after_the_link(folder, state_dir, by, request)
    with chain_lock(folder):
        if _ended(folder, request) or request not in open_requests(folder, folder.read_events()):
            return None
        try:  # under the lock: what another keeper queued is known by now, or found here
            tagged = slurm.tagged_jobs(request.tag, clusters)
        except SlurmCommandError as exc:
            log.info("chain {}: squeue did not answer: {}", folder.chain_id, exc.message)
            return None
        if tagged:
            _found(folder, request.job_id, tagged[0], by)
            return None
        asked = read_request(folder, request.job_id)
        if asked is None:
            return None
        if not asked.carries(request.tag):
            why = f"its request does not carry the tag {request.tag}: not submitted"
            folder.append_event(protocol.KEEPER_FAILED, job=request.job_id, error=why, by=by)
            return None
        try:
            job_id = submit_request(asked, asked.arguments)
        except SlurmCommandError as exc:
            # Unknown, not missing: the next pass looks for its tag before it submits again.
            folder.append_event(
                protocol.KEEPER_FAILED, job=request.job_id, error=exc.message, by=by
            )
            log.warning("chain {}: could not queue the successor of job {}: {}",
                        folder.chain_id, request.job_id, exc.message)  # fmt: skip
            return None
        state_dir.record_job(job_id, folder.chain_id)
        folder.append_event(protocol.SUCCESSOR_QUEUED, job=request.job_id, successor=job_id, by=by)
        if _ended(folder, request):  # the chain ended while it was submitted: take it back
            _cancel(folder, job_id, clusters, by)
        return job_id


def _ended(folder: ChainFolder, request: Open) -> bool:
    """The chain, or the request's array element, has a recorded end."""
    return bool(folder.ended()) or (
        request.element is not None and request.element in folder.element_ends()
    )


def _after_the_link(folder: ChainFolder, state_dir: StateDir, by: str, request: Open) -> str | None:
    """The link has ended (or slurmctld forgot it) and nobody queued its successor: learn from
    sacct how it ended, as the watcher does, record an end the link could not, and let the
    repair decide by the rule table whether the chain goes on (it submits the link's own
    request, without the wait)."""
    element = request.element
    view = live_view(folder) if element is None else live_array_view(folder).elements.get(element)
    if view is None:
        return None
    if view.state == states.CHAIN_STALLED:
        settled = settle_from_accounting(folder, view)
        if settled is None:
            why = f"sacct did not answer about job {request.job_id}; asked again next time"
            folder.append_event(protocol.KEEPER_FAILED, job=request.job_id, error=why, by=by)
            return None
        if settled:
            view = (
                live_view(folder, ask_slurm=False)
                if element is None
                else live_array_view(folder, ask_slurm=False).elements.get(element, view)
            )
    record_end(folder, view, by=by, element=element)
    try:
        return repair(folder, state_dir, element)
    except RepairRefused as exc:
        log.info("chain {}: {}", folder.chain_id, exc.message)
    except SlurmCommandError as exc:  # unknown: the next pass looks for the tag first
        folder.append_event(protocol.KEEPER_FAILED, job=request.job_id, error=exc.message, by=by)
    return None


def _found(folder: ChainFolder, job_id: str, successor: str, by: str) -> None:
    with chain_lock(folder):
        if any(r.job_id == job_id for r in open_requests(folder, folder.read_events())):
            folder.append_event(protocol.SUCCESSOR_FOUND, job=job_id, successor=successor, by=by)


def _cancel(folder: ChainFolder, job_id: str, clusters: list[str], by: str) -> None:
    try:
        slurm.scancel(job_id, clusters)
        folder.append_event(protocol.JOBS_CANCELLED, jobs=job_id, by=by)
    except SlurmCommandError as exc:  # it starts, finds the end and runs nothing
        log.warning("chain {}: could not cancel job {}: {}", folder.chain_id, job_id, exc)


def _user_jobs(clusters: list[str]) -> list[TaggedRow] | None:
    """The user's jobs with their tags (one squeue call); None when squeue did not answer."""
    try:
        return slurm.user_jobs(clusters)
    except SlurmCommandError as exc:
        log.info("squeue did not answer: {}", exc.message)
        return None


@dataclass(frozen=True)
class Pass:
    """What one pass over all chains did."""

    chains: int  # chains with a request still open
    queued: list[str]
    unanswered: bool  # squeue did not answer: nothing was decided


def keep_all(state_dir: StateDir, by: str = "keeper") -> Pass:
    """One pass over every chain of the state directory: one squeue call per cluster for all
    of them, and sbatch only for a successor that is missing."""
    if not state_dir.exists():
        return Pass(0, [], False)
    candidates = []
    by_clusters: dict[tuple[str, ...], list[ChainFolder]] = {}
    for folder in _chains_with_requests(state_dir):
        try:  # only chains with a request still open cost a question to Slurm
            if folder.ended() or not open_requests(folder, folder.read_events()):
                continue
            clusters = tuple(folder.read_meta().cluster_args())
        except CHAIN_ERRORS as exc:
            log.warning("chain {}: {}", folder.chain_id, exc)
            continue
        candidates.append(folder)
        by_clusters.setdefault(clusters, []).append(folder)
    queued: list[str] = []
    unanswered = False
    for clusters, folders in by_clusters.items():
        rows = _user_jobs(list(clusters))
        if rows is None:
            unanswered = True
            continue
        for folder in folders:
            try:
                queued += keep_chain(folder, state_dir, by, rows)
            except CHAIN_ERRORS as exc:
                log.warning("chain {}: {}", folder.chain_id, exc)
    return Pass(len(candidates), queued, unanswered)


def _chains_with_requests(state_dir: StateDir) -> Iterable[ChainFolder]:
    """Chain folders in which some link left a request (a cheap look: no event is read)."""
    try:
        names = sorted(os.listdir(state_dir.chains))
    except FileNotFoundError:
        return
    for name in names:
        folder = ChainFolder(state_dir.chains / name)
        if any(folder.path.glob(f"{protocol.LINKS}/*/{protocol.REQUEST}")):
            yield folder


def run(state_dir: StateDir, *, once: bool, interval: float) -> int:
    """`longrun keeper`: passes until Ctrl-C (or one with `once`), a line for what each did
    (a pass that found nothing to do is silent); exit status 1 if the last pass had no answer
    from squeue."""
    try:
        while True:
            done = keep_all(state_dir)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
            for job in done.queued:
                print(f"[{stamp}] queued job {job}", flush=True)
            if done.unanswered:
                print(f"[{stamp}] squeue did not answer: nothing was decided", flush=True)
            if once:
                return 1 if done.unanswered else 0
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0


# --- cron: `longrun keeper --install` --------------------------------------------------------
CRON_MARK = "# longrun keeper"


def cron_line(state_dir: StateDir, longrun: Sequence[str], environ: Mapping[str, str]) -> str:
    """The crontab line that runs one keeper pass a minute for this state directory, with the
    PATH and SLURM_CONF of the installing shell (cron's own are minimal)."""
    names = ("PATH", "SLURM_CONF")
    env = [f"{name}={shlex.quote(environ[name])}" for name in names if environ.get(name)]
    root = state_dir.root.absolute()
    command = [*longrun, "keeper", "--once", "--state-dir", str(root)]
    log_file = shlex.quote(str(root / protocol.KEEPER_LOG))
    line = f"* * * * * {' '.join([*env, shlex.join(command)])} >>{log_file} 2>&1 {CRON_MARK} {root}"
    return line.replace("%", "\\%")  # cron reads % as a newline


def with_keeper(crontab: str, line: str | None, state_dir: StateDir) -> str:
    """The crontab with this state directory's keeper line replaced (None: removed)."""
    mark = f"{CRON_MARK} {state_dir.root.absolute()}".replace("%", "\\%")
    kept = [old for old in crontab.splitlines() if not old.endswith(mark)]
    if line is not None:
        kept.append(line)
    return "".join(f"{entry}\n" for entry in kept)


def install(state_dir: StateDir, *, remove: bool = False) -> str:
    """Add (or with `remove`, take out) the keeper's line in the user's crontab; what was done."""
    crontab = shutil.which("crontab")
    if crontab is None:
        raise UsageError(
            "crontab is not on PATH: cron is not installed on this host",
            "Run `longrun keeper` in a terminal multiplexer (tmux, screen) instead, or ask "
            "your site for cron on the login node.",
        )
    current = subprocess.run([crontab, "-l"], capture_output=True, text=True, check=False)
    if current.returncode != 0 and "no crontab" not in current.stderr:
        raise LongrunError(f"crontab -l failed: {current.stderr.strip()}")
    text = current.stdout if current.returncode == 0 else ""
    longrun = _longrun_command()
    line = None if remove else cron_line(state_dir, longrun, os.environ)
    new = with_keeper(text, line, state_dir)
    if new == text:
        return "nothing to change" if remove else f"already installed: {line}"
    written = subprocess.run([crontab, "-"], input=new, capture_output=True, text=True, check=False)
    if written.returncode != 0:
        raise LongrunError(f"crontab - failed: {written.stderr.strip()}")
    return "removed the keeper from your crontab" if remove else f"installed: {line}"


def _longrun_command() -> list[str]:
    """This longrun, by an absolute path that cron can run."""
    script = Path(sys.argv[0])
    if script.name == "longrun" and script.is_file():
        return [str(script.resolve())]
    found = shutil.which("longrun")
    if found:
        return [str(Path(found).resolve())]
    # -P: cron starts in your home; no module there may stand in for longrun's (Python 3.11+).
    return [sys.executable, *(["-P"] if sys.version_info >= (3, 11) else []), "-m", "longrun"]
