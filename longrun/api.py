"""longrun from Python: submit a chain, find chains, follow one to its end, cancel it.

The same code as the command line runs underneath (submission, `longrun status`, the watcher,
`longrun cancel`), and the same exceptions come out of it: `UsageError` for bad input (nothing
was submitted), `SlurmCommandError` when a Slurm command failed, `ChainNotFoundError`, and their
root `LongrunError`.

    import longrun
    chain = longrun.submit("train.sbatch", sbatch_args=["--time=4:00:00", "-p", "gpu"])
    state = chain.wait()          # polls as the watcher does; returns the end state
    for link in chain.links:
        print(link.number, link.job_id, link.state, link.why)
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from . import protocol, states
from .array_view import ArrayView, elements_of
from .arrays import split_element
from .chain_actions import cancel_chain, status_view
from .chain_reading import list_views
from .chain_store import ChainFolder, StateDir, default_root
from .chain_view import ChainView, LinkView
from .errors import UsageError
from .learning import LearningOptions
from .wrapper_options import DEFAULTS, WrapperOptions


@dataclass(frozen=True)
class Link:
    """One link of a chain: a Slurm job that ran (or waits to run) the script once."""

    number: int  # 1-based
    job_id: str
    state: str  # Slurm's state of the job, as squeue and sacct name it
    why: str  # why it ended, in words
    start: datetime | None
    end: datetime | None
    exit_code: int | None
    element: int | None = None  # the array element, for an array chain

    @classmethod
    def of(cls, view: LinkView, element: int | None = None) -> Link:
        """The link as `longrun status` shows it (its times as local datetimes)."""

        def when(epoch: int | None) -> datetime | None:
            return None if epoch is None else datetime.fromtimestamp(epoch)

        return cls(
            view.number, view.job_id, view.state, view.why, when(view.start_epoch),
            when(view.end_epoch), view.exit_code, element,
        )  # fmt: skip


class Chain:
    """A chain as of its last `refresh()` (or creation): the chain folder read, and one squeue
    call if the chain is still live. An array chain has one chain per element (`elements`)."""

    def __init__(self, folder: ChainFolder, view: ChainView | ArrayView | None = None) -> None:
        self._folder = folder
        self._view: ChainView | ArrayView = view or status_view(folder)

    def __repr__(self) -> str:
        return f"<longrun.Chain {self.id} {self.state}>"

    @property
    def id(self) -> str:
        """The chain id (its folder's name): `longrun status ID` and every command take it."""
        return self._folder.chain_id

    @property
    def folder(self) -> Path:
        """The chain folder (event logs, link script, library)."""
        return self._folder.path

    @property
    def state(self) -> str:
        """The chain's state, as `longrun status` shows it (longrun.states.CHAIN_END_STATES
        once it has ended)."""
        return self._view.state

    @property
    def reason(self) -> str:
        """Why the chain is in its state, in words (as `longrun status` says it)."""
        return self._view.reason

    @property
    def is_live(self) -> bool:
        """False once the chain has ended: then nothing of it runs or waits any more."""
        return self._view.state not in states.CHAIN_END_STATES

    @property
    def links(self) -> list[Link]:
        """Every link so far, in order (an array chain: element by element)."""
        if isinstance(self._view, ArrayView):
            return [
                Link.of(link, index)
                for index, element in self._view.elements.items()
                for link in element.links
            ]
        return [Link.of(link) for link in self._view.links]

    @property
    def job_ids(self) -> list[str]:
        """The links' job ids, then the job that waits to be the next link, if any."""
        jobs = [link.job_id for link in self.links]
        for view in (v for v in elements_of(self._view).values() if v.is_live):
            for job in (view.current_job, view.successor_job, view.submitted_job):
                if job and job not in jobs:
                    jobs.append(job)
        return jobs

    @property
    def elements(self) -> dict[int, str]:
        """An array chain's elements and their states; empty for a chain that is not an array."""
        if isinstance(self._view, ArrayView):
            return {index: view.state for index, view in self._view.elements.items()}
        return {}

    def refresh(self) -> Chain:
        """Read the chain again (one squeue call if it is live); returns the chain itself."""
        self._view = status_view(self._folder)
        return self

    def wait(self, timeout: float | None = None, *, verbose: bool = False) -> str:
        """Follow the chain until it ends and return its end state, polling Slurm exactly as
        the watcher does (and, like it, repairing a chain whose successor went missing).
        Raises TimeoutError after `timeout` seconds; the chain goes on."""
        from .watcher import Output, watch

        deadline = None if timeout is None else time.monotonic() + timeout

        def sleep(seconds: float) -> None:
            if deadline is not None and time.monotonic() + seconds > deadline:
                raise TimeoutError(f"chain {self.id} still {self.refresh().state} after {timeout}s")
            time.sleep(seconds)

        folder = self._folder
        output = Output() if verbose else Output(io.StringIO())
        try:
            watch(folder, StateDir(folder.path.parent.parent), output=output, sleep=sleep)
        finally:
            self.refresh()
        return self.state

    def cancel(self, element: int | None = None) -> None:
        """Cancel the chain (or one array element): its successor, then its running link."""
        cancel_chain(self._folder, element)
        self.refresh()

    def script(self) -> str:
        """The link script as Slurm runs it (`longrun show`)."""
        return self._folder.link_script.read_text()


def _state(state_dir: str | os.PathLike[str] | None) -> StateDir:
    return StateDir(default_root(None if state_dir is None else os.fspath(state_dir)))


def submit(
    script: str | os.PathLike[str],
    sbatch_args: Sequence[str] = (),
    script_args: Sequence[str] = (),
    *,
    max_restarts: int = DEFAULTS.max_restarts,
    retry_failed: int = DEFAULTS.retry_failed,
    state_dir: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    progress_file: str | None = None,
    learning: LearningOptions | None = None,
    submit_from: str = DEFAULTS.submit_from,
) -> Chain:
    """Submit `script` as a chain, as `sbatch_longrun --no-watch [sbatch_args] script
    [script_args]` would from `cwd` (default: the current folder); no watcher is started.
    sbatch's options go in `sbatch_args`, each as its own item (["--time=1:00:00", "-p", "gpu"]);
    `learning` holds --avoid-failed-nodes, --node-check, --grow-mem-on-oom, --max-idle-links
    and --total-time (longrun.learning.LearningOptions); `submit_from="login"` leaves every
    successor to a keeper on a login node (`longrun keeper`)."""
    from .submission import Submitted
    from .submission import submit as submit_chain

    for name, value in (("max_restarts", max_restarts), ("retry_failed", retry_failed)):
        if not isinstance(value, int) or value < 0:
            raise UsageError(f"{name} must be a whole number, 0 or more (not {value!r})")
    if isinstance(sbatch_args, str) or isinstance(script_args, str):
        raise UsageError("sbatch_args and script_args are lists of arguments, not one string")
    if submit_from not in protocol.SUBMIT_FROM:
        raise UsageError(f"submit_from must be one of {', '.join(protocol.SUBMIT_FROM)}")
    wrapper = WrapperOptions(
        max_restarts=max_restarts, retry_failed=retry_failed, no_watch=True,
        state_dir=None if state_dir is None else os.fspath(state_dir),
        progress_file=progress_file, learning=learning or LearningOptions(),
        submit_from=submit_from,
    )  # fmt: skip
    path = Path(os.fspath(script))
    if cwd is not None and not path.is_absolute():
        path = Path(os.fspath(cwd)) / path  # as sbatch run from cwd would find it
    argv = [*sbatch_args, str(path), *script_args]
    outcome = submit_chain(wrapper, argv, cwd=None if cwd is None else os.fspath(cwd))
    if not isinstance(outcome, Submitted):
        raise UsageError("--test-only submits nothing: use sbatch_longrun --test-only for it")
    return Chain(outcome.folder)


def chain(ref: str | int, *, state_dir: str | os.PathLike[str] | None = None) -> Chain:
    """The chain with this chain id, or with a link of this job id (`ARRAYJOB_TASK` too)."""
    job_or_chain, _ = split_element(str(ref))
    return Chain(_state(state_dir).find(job_or_chain))


def chains(
    *, state_dir: str | os.PathLike[str] | None = None, live_only: bool = False
) -> list[Chain]:
    """Every chain of the state directory, newest first (live ones share one squeue call)."""
    state = _state(state_dir)
    views = {view.chain_id: view for view in list_views(state, live_only)}
    return [Chain(f, views[f.chain_id]) for f in state.list() if f.chain_id in views]
