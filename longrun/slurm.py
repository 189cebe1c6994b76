"""The one place that runs Slurm's commands: argument lists, captured output, a timeout."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from loguru import logger

from .errors import SlurmCommandError

DEFAULT_TIMEOUT = 60.0


def run(
    args: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    input: str | None = None,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run one Slurm command; raise SlurmCommandError with its stderr when it fails (if check)."""
    command = [str(a) for a in args]
    logger.debug("running {}", command)
    try:
        result = subprocess.run(
            command,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            check=False,
        )
    except FileNotFoundError as exc:
        raise SlurmCommandError(
            command,
            f"{command[0]}: command not found",
            returncode=127,
            hint="Slurm's commands must be on PATH: load your site's Slurm module, "
            "or run this on a login node of the cluster.",
        ) from exc
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        raise SlurmCommandError(
            command,
            stderr,
            returncode=None,
            hint=f"No answer within {timeout:.0f}s: is slurmctld reachable (`scontrol ping`)?",
        ) from exc
    if check and result.returncode != 0:
        raise SlurmCommandError(command, result.stderr, returncode=result.returncode)
    return result
