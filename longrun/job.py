"""For a Python program that runs as a link of a chain: where it is in the chain, and whether
Slurm has asked it to stop (the pre-timeout signal), so that it can checkpoint at the next step
boundary and leave. The standard library only: it costs nothing to import on a compute node.

    from longrun import job

    job.install_handler()                 # once, at the start
    state = load_checkpoint() if job.restart_count() else fresh_state()
    for step in steps_from(state):
        train_one_step(state)
        if job.stop_requested():
            save_checkpoint(state)
            job.request_continue()        # exit with the continue code: the next link goes on

Outside a chain every function still answers (restart count 0, nothing requested), so the same
program runs by hand.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterable
from types import FrameType
from typing import NoReturn

DEFAULT_CONTINUE_CODE = 75  # longrun.protocol.CONTINUE_EXIT_CODE; not imported, to stay light

_requested: list[str] = []  # the names of the signals that arrived


def in_chain() -> bool:
    """Whether this program runs as a link of a longrun chain."""
    return bool(os.environ.get("SLURM_LONGRUN_CHAIN_ID"))


def chain_id() -> str | None:
    """The chain's id (`longrun status` takes it): the same in every link, so a name for the
    run in an experiment tracker (W&B, MLflow, TensorBoard); None outside a chain."""
    return os.environ.get("SLURM_LONGRUN_CHAIN_ID") or None


def restart_count() -> int:
    """0 in the first link, 1 in the second, ...: non-zero means "resume from a checkpoint"."""
    return _int("SLURM_LONGRUN_RESTART_COUNT", 0)


def max_restarts() -> int | None:
    """The chain's --max-restarts; None outside a chain."""
    return _int("SLURM_LONGRUN_MAX_RESTARTS", -1) if in_chain() else None


def link_number() -> int:
    """1 in the first link, 2 in the second, ... (SLURM_LONGRUN_LINK); 1 outside a chain."""
    return _int("SLURM_LONGRUN_LINK", restart_count() + 1)


def initial_job_id() -> str | None:
    """The job id of the chain's first link: a name for the run that stays the same."""
    return os.environ.get("SLURM_LONGRUN_INITIAL_JOB_ID") or os.environ.get("SLURM_JOB_ID")


def previous_job_id() -> str | None:
    """The job id of the link before this one; None in the first link."""
    return os.environ.get("SLURM_LONGRUN_PREVIOUS_JOB_ID") or None


def previous_state() -> str | None:
    """How Slurm ended the previous link (its state as sacct names it); None in the first link
    or when Slurm could not tell."""
    return os.environ.get("SLURM_LONGRUN_PREVIOUS_STATE") or None


def continue_code() -> int:
    """The exit status that asks for a new link: "my work is not done; go on"."""
    return _int("SLURM_LONGRUN_CONTINUE_CODE", DEFAULT_CONTINUE_CODE)


def pretimeout_signal() -> str:
    """The name of the signal Slurm sends before the time limit (USR1 unless --signal says)."""
    return os.environ.get("SLURM_LONGRUN_SIGNAL") or "USR1"


def deadline() -> float | None:
    """When Slurm will end this link (epoch seconds, SLURM_LONGRUN_DEADLINE); None outside a
    chain or when Slurm gave the job no end time."""
    value = _int("SLURM_LONGRUN_DEADLINE", 0)
    return float(value) if value > 0 else None


def time_left() -> float | None:
    """Seconds until Slurm ends this link (0 once past it): checkpoint at a step boundary
    while enough is left, instead of inside a signal handler. None when unknown."""
    end = deadline()
    return None if end is None else max(0.0, end - time.time())


def report_progress(value: object = "") -> bool:
    """Tell the chain this link made progress (a checkpoint saved, a step done): rewrites
    --progress-file with `value` (its first line is shown by `longrun status`). A chain that
    sees no progress in --max-idle-links links in a row ends NO_PROGRESS. Returns False when
    the chain tracks no progress file (or outside a chain)."""
    path = os.environ.get("SLURM_LONGRUN_PROGRESS_FILE")
    if not path:
        return False
    folder = os.path.dirname(path) or "."
    fd, temporary = tempfile.mkstemp(prefix=".progress.", dir=folder)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{value}\n")
        os.replace(temporary, path)  # whole, by rename: a reader never sees half a value
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return True


def install_handler(signals: Iterable[str] | None = None) -> None:
    """Remember the pre-timeout signal (and SIGTERM: a preemption or a cancel) instead of
    dying from it; `stop_requested()` then says True. Call it once, from the main thread."""
    names = list(signals) if signals is not None else [pretimeout_signal(), "TERM"]
    for name in dict.fromkeys(names):
        signal.signal(_signal_number(name), _remember)


def stop_requested() -> bool:
    """Whether a signal `install_handler` watches has arrived: checkpoint and leave soon."""
    return bool(_requested)


def signals_received() -> list[str]:
    """The names of the signals that arrived since `install_handler`, in order (e.g. USR1)."""
    return list(_requested)


def request_continue() -> NoReturn:
    """Exit with the continue code: the chain runs this program again in a new link."""
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(continue_code())


def _remember(signum: int, _frame: FrameType | None) -> None:
    _requested.append(signal.Signals(signum).name.removeprefix("SIG"))


def _signal_number(name: str) -> signal.Signals:
    text = name.strip().upper()
    if text.isdigit():
        return signal.Signals(int(text))
    try:
        return signal.Signals[text if text.startswith("SIG") else f"SIG{text}"]
    except KeyError:
        raise ValueError(f"not a signal: {name!r}") from None


def _int(name: str, default: int) -> int:
    try:
        return int(os.environ[name])
    except (KeyError, ValueError):
        return default
