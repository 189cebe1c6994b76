"""The errors longrun expects. The CLI prints them as messages, never as tracebacks."""

from __future__ import annotations

from collections.abc import Sequence


class LongrunError(Exception):
    """Root of every expected failure: a message, an optional next step and an exit status."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class UsageError(LongrunError):
    """The user's input is wrong; nothing was submitted or written."""

    exit_code = 2


class SlurmCommandError(LongrunError):
    """A Slurm command failed; carries the command line and Slurm's own words."""

    def __init__(
        self,
        command: Sequence[str],
        stderr: str,
        returncode: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.command = list(command)
        self.stderr = stderr.strip()
        self.returncode = returncode
        status = "timed out" if returncode is None else f"failed (exit {returncode})"
        message = f"`{' '.join(self.command)}` {status}"
        if self.stderr:
            message += f":\n{self.stderr}"
        super().__init__(message, hint)


class RepairRefused(LongrunError):
    """A link's successor was repaired once already: a second repair is never made, whatever
    the chain folder says (a folder that always looks broken would make the watcher submit
    without end)."""


class StateError(LongrunError):
    """The state folder the user pointed at is missing, unsafe or unreadable: fix it, retry."""

    exit_code = 2


class ChainNotFoundError(LongrunError):
    """No chain matches what the user named."""

    exit_code = 2
