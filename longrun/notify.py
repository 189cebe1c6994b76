"""Notifications without Slurm's mail: --notify CMD, --notify-url URL, --notify-on WHEN.

The job side runs them (a compute node, never a resident login process), at the events of
protocol.NOTIFY_EVENTS, bounded by a timeout so that a notifier that fails or hangs costs the
chain nothing but a `notify_failed` event. Checked here, at submission, so that a notifier that
cannot run is a usage error and not a silent chain.

The command is split into words as a shell would split it, and never run by a shell: the link
script runs it as an argument list (`sh -c '...'` if you want a shell). A first word with a `/`
is taken from the submit directory; one without is looked up on your PATH now, so that the job's
PATH does not matter. Like the chain folder, the notifier and every folder on the way to it must
be yours or root's and writable by nobody else: it runs as you.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import protocol
from .chain_store import check_trusted_path
from .errors import StateError, UsageError

NOTIFY_TIMEOUT_SECONDS = 30  # one notifier run, or one POST with its retries
NOTIFY_ON = tuple(protocol.NOTIFY_EVENTS)  # end (the default), all


@dataclass(frozen=True)
class NotifyPlan:
    command: tuple[str, ...] = ()
    url: str = ""
    on: str = "end"

    @property
    def events(self) -> tuple[str, ...]:
        return protocol.NOTIFY_EVENTS[self.on] if self.command or self.url else ()


def notify_plan(
    command: str | None,
    url: str | None,
    on: str,
    submit_dir: str,
    environ: Mapping[str, str],
) -> NotifyPlan:
    """The checked notifiers; UsageError for one that cannot run."""
    if on not in protocol.NOTIFY_EVENTS:
        raise UsageError(f"--notify-on {on!r}: say {' or '.join(NOTIFY_ON)}")
    words: tuple[str, ...] = ()
    if command is not None:
        words = command_words(command, "--notify", submit_dir, environ)
    if url is not None:
        _check_url(url)
    return NotifyPlan(words, url or "", on)


def command_words(
    command: str, option: str, submit_dir: str, environ: Mapping[str, str]
) -> tuple[str, ...]:
    """A command the job side runs (--notify, --node-check): its words, the first resolved to
    an absolute, trusted path. UsageError for one that cannot run."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise UsageError(
            f"{option} {command!r}: {exc}", "Quote it as you would in a shell."
        ) from None
    if not words:
        raise UsageError(f"{option} needs a command", f"For example: {option} ./check.sh")
    return (_executable(words[0], option, submit_dir, environ), *words[1:])


def _executable(name: str, option: str, submit_dir: str, environ: Mapping[str, str]) -> str:
    if "/" in name:
        path = os.path.normpath(os.path.join(submit_dir, name))
    else:
        path = shutil.which(name, path=environ.get("PATH", "")) or ""
    if not path or not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise UsageError(
            f"{option}: {name!r} is not an executable file"
            + ("" if "/" in name else " on your PATH"),
            "Give the command's path (./notify.sh) or a command on your PATH; "
            "nothing was submitted.",
        )
    path = os.path.abspath(path)
    try:  # the job side checks the same before each run (lr_trusted_path)
        check_trusted_path(Path(path))
    except StateError as exc:
        raise UsageError(
            f"{option}: {exc.message}",
            "Someone else could change what your jobs run: keep the command where only you "
            "(or root) can write; nothing was submitted.",
        ) from None
    return path


def _check_url(url: str) -> None:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in ("http", "https") or any(c.isspace() or ord(c) < 32 for c in url):
        raise UsageError(
            f"--notify-url {url!r} is not an http:// or https:// address",
            "For example: --notify-url https://hooks.example.org/longrun",
        )
