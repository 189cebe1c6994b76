"""longrun's messages: loguru, imported only when a message is written, so that commands that
only read the chain folder start fast. Quiet until the command line sets a level (a program
that imports longrun gets no output from it)."""

from __future__ import annotations

import sys
from typing import Any

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}
_level: str | None = None
_ready = False


def configure(level: str) -> None:
    """Write messages of `level` and above to standard error, as `longrun: message`."""
    global _level, _ready
    _level, _ready = level, False


def _emit(level: str, message: str, *args: Any) -> None:
    global _ready
    if _level is None or LEVELS[level] < LEVELS[_level]:
        return
    from loguru import logger

    if not _ready:
        logger.remove()
        logger.add(
            sys.stderr, level=_level, format="<level>longrun: {message}</level>", colorize=None
        )
        _ready = True
    logger.opt(depth=2).log(level, message, *args)


def debug(message: str, *args: Any) -> None:
    _emit("DEBUG", message, *args)


def info(message: str, *args: Any) -> None:
    _emit("INFO", message, *args)


def warning(message: str, *args: Any) -> None:
    _emit("WARNING", message, *args)
