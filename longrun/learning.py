"""A chain that learns from how its links ended: the options, checked at submission.

The job side does the learning (templates/library.sh.j2, `lr_learn`); this module turns what
the user typed into the numbers it needs, and refuses what cannot work before anything is
submitted:
- --avoid-failed-nodes[=DURATION] (on, 24 h): nodes of a link that lost its node or failed
  soon after its start are excluded from later links for DURATION;
- --node-check CMD: run before the body; a failure avoids the node and hands over;
- --grow-mem-on-oom FACTOR[:MAX]: after a link runs out of memory, the next link asks for
  FACTOR times the memory, up to MAX;
- --max-idle-links N (3 with --progress-file): the chain ends NO_PROGRESS after N links in a
  row that left --progress-file unchanged;
- --total-time DURATION: the links' run times add up to at most DURATION (TIME_BUDGET).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import UsageError
from .notify import command_words

DEFAULT_AVOID = "24h"
DEFAULT_MAX_IDLE_LINKS = 3  # when --progress-file is given
FAST_FAIL_SECONDS = 60  # a link that fails sooner after its start blames its node
NODE_CHECK_SECONDS = 300  # the longest a --node-check may run
MAX_HANDOVERS = 5  # hand-overs in a row before the chain ends: no node takes the work
DAY = 86400

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": DAY}
_SUFFIXED = re.compile(r"^(\d+)([smhd])$")
_MEMORY = re.compile(r"^(\d+)([KMGT]?)B?$", re.IGNORECASE)
_MEMORY_UNITS = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}


@dataclass(frozen=True)
class LearningOptions:
    """What the user typed (None: not given)."""

    avoid_failed_nodes: str | None = DEFAULT_AVOID  # None: --no-avoid-failed-nodes
    node_check: str | None = None
    grow_mem_on_oom: str | None = None
    max_idle_links: int | None = None
    total_time: str | None = None


@dataclass(frozen=True)
class LearningPlan:
    """What the link script gets (0: off)."""

    avoid_seconds: int = 0
    fast_fail_seconds: int = FAST_FAIL_SECONDS
    node_check: tuple[str, ...] = ()
    node_check_seconds: int = NODE_CHECK_SECONDS
    # A node that fails --node-check is avoided this long, even with --no-avoid-failed-nodes.
    node_check_avoid_seconds: int = DAY
    max_handovers: int = MAX_HANDOVERS  # LONGRUN_MAX_HANDOVERS
    grow_percent: int = 0  # FACTOR x 100
    grow_max_mb: int = 0
    max_idle_links: int = 0
    total_seconds: int = 0
    # The user's own placement, merged with what the chain avoids (see lr_avoided).
    user_exclude: str = ""
    user_nodelist: str = ""
    partition: str = ""
    notes: tuple[str, ...] = field(default=())


def duration_seconds(text: str, option: str) -> int:
    """Slurm's time formats (MINUTES, MM:SS, HH:MM:SS, D-HH[:MM[:SS]]) or 30s, 90m, 24h, 7d."""
    value = text.strip().lower()
    match = _SUFFIXED.match(value)
    seconds = int(match[1]) * _UNITS[match[2]] if match else _slurm_time(value)
    if seconds is None or seconds <= 0:
        raise UsageError(
            f"{option} {text!r} is not a duration",
            "Give it as Slurm gives times (90, 1:30:00, 2-00:00:00) or as 30m, 24h, 7d.",
        )
    return seconds


def _slurm_time(value: str) -> int | None:
    days, dash, rest = value.partition("-")
    if not dash:
        days, rest = "0", value
    parts = rest.split(":")
    if not days.isdigit() or not all(p.isdigit() for p in parts) or len(parts) > 3:
        return None
    numbers = [int(p) for p in parts]
    if dash:  # days-hours[:minutes[:seconds]]
        numbers += [0] * (3 - len(numbers))
        hours, minutes, seconds = numbers
    elif len(numbers) == 1:
        hours, minutes, seconds = 0, numbers[0], 0
    elif len(numbers) == 2:
        hours, minutes, seconds = 0, *numbers
    else:
        hours, minutes, seconds = numbers
    return int(days) * DAY + hours * 3600 + minutes * 60 + seconds


def memory_mb(text: str, option: str) -> int:
    """A Slurm memory size (MB unless K, M, G or T follows) in whole MB."""
    match = _MEMORY.match(text.strip())
    if not match or int(match[1]) == 0:
        raise UsageError(f"{option}: {text!r} is not a memory size", "For example 64G or 8000M.")
    return max(1, int(int(match[1]) * _MEMORY_UNITS[(match[2] or "M").upper()]))


def grow_setting(text: str) -> tuple[int, int]:
    """--grow-mem-on-oom FACTOR[:MAX] -> (FACTOR in percent, MAX in MB or 0)."""
    factor_text, _, maximum = text.partition(":")
    try:
        factor = float(factor_text)
    except ValueError:
        factor = 0.0
    if not 1 < factor <= 100:
        raise UsageError(
            f"--grow-mem-on-oom {text!r}: the factor must be a number above 1",
            "For example --grow-mem-on-oom 2 (twice the memory) or 1.5:64G (at most 64G).",
        )
    return round(factor * 100), (memory_mb(maximum, "--grow-mem-on-oom") if maximum else 0)


def learning_plan(
    options: LearningOptions,
    effective: Mapping[str, str | None],
    progress_file: str,
    submit_dir: str,
    environ: Mapping[str, str],
) -> LearningPlan:
    """The checked settings; UsageError for what cannot work. `effective`: sbatch's options
    after its precedence rules (command line, SBATCH_* variables, #SBATCH lines)."""
    avoid = options.avoid_failed_nodes
    grow, grow_max = grow_setting(options.grow_mem_on_oom) if options.grow_mem_on_oom else (0, 0)
    if options.max_idle_links is not None and not progress_file:
        raise UsageError(
            "--max-idle-links needs --progress-file: without it longrun cannot see progress",
            "Add --progress-file PATH (a file your job rewrites when it makes progress).",
        )
    idle = options.max_idle_links
    if idle is None:
        idle = DEFAULT_MAX_IDLE_LINKS if progress_file else 0
    check: tuple[str, ...] = ()
    if options.node_check is not None:
        check = command_words(options.node_check, "--node-check", submit_dir, environ)
    nodelist = effective.get("nodelist") or ""
    return LearningPlan(
        avoid_seconds=duration_seconds(avoid, "--avoid-failed-nodes") if avoid else 0,
        node_check=check,
        node_check_avoid_seconds=duration_seconds(avoid, "--avoid-failed-nodes") if avoid else DAY,
        grow_percent=grow,
        grow_max_mb=grow_max,
        max_idle_links=idle,
        total_seconds=(
            duration_seconds(options.total_time, "--total-time") if options.total_time else 0
        ),
        user_exclude=effective.get("exclude") or "",
        # A --nodelist naming a file is sbatch's to read: longrun leaves its nodes alone.
        user_nodelist="" if "/" in nodelist else nodelist,
        partition=effective.get("partition") or "",
    )
