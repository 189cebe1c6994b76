"""sbatch_longrun's own options (every other option goes to sbatch), with their defaults
declared once here for the command line, the Python API and the plan."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import protocol
from .learning import LearningOptions


@dataclass(frozen=True)
class WrapperOptions:
    """sbatch_longrun's own options."""

    max_restarts: int = 999
    retry_failed: int = 0
    verbosity: str = "DEFAULT"
    detached: bool = False
    no_watch: bool = False
    dry_run: bool = False
    state_dir: str | None = None
    notify: str | None = None  # --notify CMD
    notify_url: str | None = None
    notify_on: str = "end"
    progress_file: str | None = None
    submit_from: str = protocol.SUBMIT_FROM_COMPUTE  # or login: a keeper submits successors
    learning: LearningOptions = field(default_factory=LearningOptions)


DEFAULTS = WrapperOptions()
