"""Which environment later links get, as sbatch's --export decides it for the first link."""

from __future__ import annotations

import pytest

from longrun.environment import (
    EXPORT_ALL,
    EXPORT_LIST,
    EXPORT_NONE,
    ExportMode,
    export_mode,
    successor_arguments,
    successor_environment,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ExportMode(EXPORT_ALL)),
        ("ALL", ExportMode(EXPORT_ALL)),
        ("all,X=1", ExportMode(EXPORT_ALL)),
        ("NONE", ExportMode(EXPORT_NONE)),
        ("A,B=2,C", ExportMode(EXPORT_LIST, ("A", "C"))),
        ("NIL", ExportMode(EXPORT_LIST, ("NIL",))),
    ],
)
def test_export_mode(value: str | None, expected: ExportMode) -> None:
    assert export_mode(value) == expected


def test_a_users_own_export_file_gets_nothing_added() -> None:
    assert export_mode(None, export_file=True) == ExportMode(EXPORT_NONE)
    assert successor_arguments(ExportMode(EXPORT_NONE), "/c/env") == []
    assert successor_arguments(ExportMode(EXPORT_ALL), "/c/env") == ["--export-file=/c/env"]


def test_sbatchs_own_environment_is_small_whatever_the_snapshot_holds() -> None:
    snapshot = {f"BIG{i}": "x" * 60_000 for i in range(20)}
    snapshot.update(PATH="/bin", SBATCH_QOS="q", A="a", SLURM_CONF="/old")
    assert successor_environment(snapshot, ExportMode(EXPORT_ALL), "/job/slurm.conf") == {
        "PATH": "/bin", "SBATCH_QOS": "q", "SLURM_CONF": "/job/slurm.conf",
    }  # fmt: skip
    listed = successor_environment(snapshot, ExportMode(EXPORT_LIST, ("A",)), None)
    assert listed == {"PATH": "/bin", "SBATCH_QOS": "q", "A": "a", "SLURM_CONF": "/old"}
