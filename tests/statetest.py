"""Recorded chains (tests/unit/data/chains) put into a state folder, as links and submission
left them: for the unit tests of the commands and the API that read a state folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from longrun import protocol

CHAINS = Path(__file__).parent / "unit" / "data" / "chains"


def state_with(tmp_path: Path, *names: str) -> Path:
    """A state folder holding recorded (ended) chains, as links and submission left them."""
    root = tmp_path / "state"
    (root / "chains").mkdir(parents=True)
    (root / "jobs").mkdir()
    for name in names:
        meta = json.loads((CHAINS / name / protocol.META).read_text())
        folder = root / "chains" / meta["chain_id"]
        shutil.copytree(CHAINS / name, folder)
        for line in (folder / protocol.EVENTS).read_text().splitlines():
            job_id = json.loads(line).get("job")
            if job_id:
                (root / "jobs" / job_id).write_text(meta["chain_id"] + "\n")
    for path in (root, *root.rglob("*")):
        if path.is_dir():
            path.chmod(0o700)
    return root
