"""Recorded chains copied into a state directory, cut where a test needs them, and a stand-in
for longrun.slurm.run, for unit tests of the watcher's decisions (tests/unit)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from longrun import slurm, watcher
from longrun.chain_store import ChainFolder, StateDir
from longrun.chain_view import ChainView

CHAINS = Path(__file__).parent / "unit" / "data" / "chains"


class FakeSlurm:
    """A stand-in for longrun.slurm.run: squeue shows `queue`, sacct `accounting` (job ->
    state), or fails as when slurmdbd does not answer; sbatch hands out job ids from 901 on."""

    def __init__(
        self, queue: dict[str, str], accounting: dict[str, str] | None = None, *,
        sacct_fails: bool = False,
    ) -> None:  # fmt: skip
        self.queue = queue
        self.accounting = accounting or {}
        self.sacct_fails = sacct_fails
        self.submitted: list[list[str]] = []

    def run(self, args: Sequence[str], **_: Any) -> subprocess.CompletedProcess[str]:
        out = ""
        if args[0] == "sbatch":
            self.submitted.append(list(args))
            out = f"{900 + len(self.submitted)}\n"
        elif args[0] == "squeue" and "-j" in args:
            out = "".join(
                f"{job}|{state}|None|1:00|0:00|N/A|N/A|N/A|N/A|N/A|\n"
                for job, state in self.queue.items()
            )
        elif args[0] == "sacct":
            if self.sacct_fails:
                words = "sacct: error: Problem talking to the database: Connection refused"
                raise slurm.SlurmCommandError(list(args), words, 1)
            out = "".join(
                f"{job}|{state}|0:0|N/A|N/A|00:01:00|None\n"
                for job, state in self.accounting.items()
            )
        return subprocess.CompletedProcess(list(args), 0, out, "")


class Lines:
    """A stream that keeps what was written."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    def flush(self) -> None:
        pass

    def getvalue(self) -> str:
        return "".join(self.parts)


def ended_chain(base: Path) -> tuple[ChainFolder, StateDir]:
    """A copy of a real chain that completed, in a state directory under base."""
    state = StateDir(base / "state")
    state.ensure()
    meta = json.loads((CHAINS / "timeout" / "chain.json").read_text())
    folder = ChainFolder(state.chains / meta["chain_id"])
    folder.path.mkdir(mode=0o700)
    (folder.path / "links").mkdir(mode=0o700)
    shutil.copy(CHAINS / "timeout" / "chain.json", folder.meta_file)
    shutil.copy(CHAINS / "timeout" / "events.jsonl", folder.events_file)
    folder.set_ended("COMPLETED")
    return folder, state


def stalled_chain(base: Path) -> tuple[ChainFolder, StateDir, str]:
    """The same chain cut where its first link ended and its successor is gone."""
    folder, state = ended_chain(base)
    folder.ended_file.unlink()
    lines = folder.events_file.read_text().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if '"body_exited"' in line) + 1
    folder.events_file.write_text("".join(lines[:cut]))
    folder.write_env({"PATH": "/usr/bin:/bin"})
    folder.write_link_script("#!/bin/bash\n")
    return folder, state, json.loads(lines[cut - 1])["job"]


@dataclass
class Watched:
    """A stalled chain, the stand-in Slurm, and one watcher's memory and output."""

    folder: ChainFolder
    state: StateDir
    last: str  # the job id of the chain's last link
    slurm: FakeSlurm
    memory: watcher.WatchMemory = field(default_factory=watcher.WatchMemory)
    out: watcher.Output = field(default_factory=lambda: watcher.Output(stream=Lines()))

    def check(self) -> ChainView:
        """One look of the watcher at the chain."""
        return watcher._check(self.folder, self.state, self.out, self.memory)

    def said(self) -> str:
        return self.out.stream.getvalue()


def watched_stall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, sacct_fails: bool = False
) -> Watched:
    """stalled_chain, with squeue showing its last link ended TIMEOUT (and nothing else)."""
    folder, state, last = stalled_chain(tmp_path)
    fake = FakeSlurm({last: "TIMEOUT"}, sacct_fails=sacct_fails)
    monkeypatch.setattr(slurm, "run", fake.run)
    return Watched(folder, state, last, fake)
