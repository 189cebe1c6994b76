"""The unit layer needs no Slurm: every Slurm command on PATH is a stand-in that fails the test
that reaches it (tests/slurmguard.py). Tests that need a command bring their own first."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from jobside import JobSide

import slurmguard


@pytest.fixture(autouse=True)
def _no_real_slurm(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # For this test only: end-to-end tests may run in the same worker afterwards.
    monkeypatch.setenv("PATH", slurmguard.guarded_path(os.environ.get("PATH", "/usr/bin:/bin")))
    slurmguard.reached()
    yield
    calls = slurmguard.reached()
    if calls:
        pytest.fail(f"a unit test reached Slurm's own commands: {calls}", pytrace=False)


@pytest.fixture
def side(tmp_path: Path) -> JobSide:
    """A chain's job side with stand-in Slurm commands (tests/jobside.py)."""
    return JobSide(tmp_path)
