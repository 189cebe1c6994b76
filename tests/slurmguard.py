"""Stand-ins for every Slurm command, first on PATH in the unit tests: a unit test that reaches
a real Slurm command would pass or fail by what the machine has, so reaching one fails it.

A test that needs a command puts its own stand-in before these (tests/unit/conftest.py checks
after each test that no guard was reached)."""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path

SLURM_COMMANDS = (
    "sacct", "sacctmgr", "salloc", "sattach", "sbatch", "sbcast", "scancel", "scontrol",
    "sdiag", "sinfo", "sprio", "squeue", "sreport", "srun", "sshare", "sstat", "strigger",
)  # fmt: skip


@lru_cache(maxsize=1)
def guard_dir() -> Path:
    """This process's folder of stand-ins (each logs its call to `reached` and fails)."""
    folder = Path(tempfile.mkdtemp(prefix="longrun-slurm-guard-"))
    folder.chmod(0o755)
    for name in SLURM_COMMANDS:
        command = folder / name
        command.write_text(
            "#!/bin/sh\n"
            f'printf "%s\\n" "{name} $*" >>"{folder}/reached"\n'
            f'echo "{name}: a unit test reached a real Slurm command" >&2\n'
            "exit 1\n"
        )
        command.chmod(0o755)
    return folder


def reached() -> list[str]:
    """The Slurm commands the guard caught since the last call (and forget them)."""
    log = guard_dir() / "reached"
    if not log.exists():
        return []
    lines = log.read_text().splitlines()
    log.unlink()
    return lines


def guarded_path(base: str = "/usr/bin:/bin") -> str:
    """A PATH whose Slurm commands are the guard's."""
    return f"{guard_dir()}:{base}"


def stand_ins(folder: Path, **scripts: str) -> Path:
    """Commands of a test's own in `folder`, each running its shell script (name=script);
    returns the folder, to put first on PATH."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, script in scripts.items():
        command = folder / name
        command.write_text(f"#!/bin/sh\n{script}\n")
        command.chmod(0o755)
    return folder
