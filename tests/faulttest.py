"""A fault-injection layer for end-to-end tests: wrappers of Slurm's commands that fail, lie or
hang on demand, placed first on the PATH of a chain's submission environment (so every link
and every successor uses them), driven by a small rules file per command (tests/faults)."""

from __future__ import annotations

import fcntl
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

WRAPPER = Path(__file__).parent / "faults" / "slurm-fault"
COMMANDS = ("sbatch", "squeue", "sacct", "scancel", "scontrol")


@dataclass(frozen=True)
class Call:
    """One call of a wrapped command: from which job (empty outside jobs), how it was treated."""

    time: float
    command: str
    job: str
    mode: str
    caller: int  # the process that ran the command (in a link: its batch shell)
    args: str


class Faults:
    def __init__(self, root: Path) -> None:
        self.dir = root / "faults"
        self.bin = self.dir / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        real = shutil.which("sbatch")
        assert real, "Slurm's commands are not on PATH"
        (self.dir / "real").write_text(str(Path(real).parent))
        for name in COMMANDS:
            link = self.bin / name
            if not link.exists():
                link.symlink_to(WRAPPER)

    def env(self, base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
        """An environment whose Slurm commands are the wrappers."""
        env = dict(os.environ if base is None else base)
        env["PATH"] = f"{self.bin}:{env.get('PATH', '/usr/bin:/bin')}"
        env.update(extra)
        return env

    def arm(self, command: str, *rules: str) -> None:
        """Append rules ("fail 2", "lie 1", "hang 1 5", "block 1", "pass 1"...) for the next
        calls (see tests/faults/slurm-fault)."""
        assert command in COMMANDS
        with open(self.dir / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with open(self.dir / f"{command}.rules", "a") as handle:
                handle.write("".join(f"{rule}\n" for rule in rules))

    def deny_submission_from_jobs(self) -> None:
        """sbatch from inside a job is refused as on a site whose compute nodes may not
        submit, in Slurm's exact words; outside jobs it submits."""
        (self.dir / "deny-in-jobs").touch()

    def release(self) -> None:
        """Let every call held by a "block" rule go on."""
        (self.dir / "release").touch()

    def clear(self, command: str) -> None:
        with open(self.dir / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            (self.dir / f"{command}.rules").unlink(missing_ok=True)

    def rules_left(self, command: str) -> list[str]:
        path = self.dir / f"{command}.rules"
        return path.read_text().splitlines() if path.exists() else []

    def calls(self, command: str | None = None) -> list[Call]:
        path = self.dir / "calls.log"
        if not path.exists():
            return []
        calls = []
        for line in path.read_text().splitlines():
            stamp, name, job, mode, caller, args = line.split("\t", 5)
            if command is None or name == command:
                calls.append(Call(float(stamp), name, job, mode, int(caller), args))
        return calls
