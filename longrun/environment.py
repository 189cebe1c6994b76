"""The environment every later link is submitted with: the submission environment, snapshotted.

The first link gets the user's environment from sbatch as usual. Later links are submitted from
inside a job, whose own environment is not the user's, so sbatch runs there with a small
environment of its own (its SBATCH_* input variables, PATH, SLURM_CONF) and takes the job's
environment from the snapshot, as sbatch's --export would have taken it from the user's shell:

- ALL (sbatch's default, or `ALL,...`): the whole snapshot, by `--export-file` (a
  NUL-separated file: any size, any value, exported functions like `BASH_FUNC_module%%` too);
- a list of names (`--export=A,B=1`): those names, from the snapshot, in sbatch's environment;
- NONE: nothing.

The snapshot's format is part of longrun/protocol.py. The job side (templates/) implements the
same selection in bash; the watcher's repair uses `successor_environment` below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

EXPORT_ALL = "all"
EXPORT_LIST = "list"
EXPORT_NONE = "none"
# What sbatch itself needs in its own environment, whatever is exported to the job.
SBATCH_OWN = ("PATH", "SLURM_CONF")
SBATCH_INPUT_PREFIX = "SBATCH_"


@dataclass(frozen=True)
class ExportMode:
    mode: str
    names: tuple[str, ...] = ()


def export_mode(value: str | None, export_file: bool = False) -> ExportMode:
    """How sbatch's --export value (None: not given) selects the job's environment.

    With the user's own --export-file, the environment comes from that file: nothing of ours is
    added to it.
    """
    if export_file:
        return ExportMode(EXPORT_NONE)
    if value is None:
        return ExportMode(EXPORT_ALL)
    items = [item for item in value.split(",") if item]
    if items and items[0].upper() == "ALL":
        return ExportMode(EXPORT_ALL)
    if len(items) == 1 and items[0].upper() == "NONE":
        return ExportMode(EXPORT_NONE)
    names = tuple(item for item in items if "=" not in item and item.upper() != "NONE")
    return ExportMode(EXPORT_LIST, names)


def successor_environment(
    snapshot: Mapping[str, str], how: ExportMode, slurm_conf: str | None
) -> dict[str, str]:
    """sbatch's own environment when it submits a later link (the snapshot file is passed
    with --export-file in ALL mode, see successor_arguments)."""
    names: Sequence[str] = how.names if how.mode == EXPORT_LIST else ()
    env = {
        name: value
        for name, value in snapshot.items()
        if name.startswith(SBATCH_INPUT_PREFIX) or name in SBATCH_OWN or name in names
    }
    if slurm_conf:
        env["SLURM_CONF"] = slurm_conf
    return env


def successor_arguments(how: ExportMode, snapshot_path: str) -> list[str]:
    return [f"--export-file={snapshot_path}"] if how.mode == EXPORT_ALL else []
