"""--array values read by longrun exactly as slurmctld reads them, checked against what the
real sbatch did with each (tests/unit/data/array-specs-*.txt, made by array_specs.sh there)."""

from __future__ import annotations

from pathlib import Path

import pytest

from longrun.arrays import INVALID, parse_array
from longrun.errors import UsageError

DATA = Path(__file__).parent / "data"
CAPTURES = sorted(DATA.glob("array-specs-*.txt"))


def cases() -> list[tuple[str, int, str, str, str]]:
    """(version, MaxArraySize, OK or FAIL, spec, what Slurm made of it) for every line."""
    found = []
    for path in CAPTURES:
        version = path.stem.removeprefix("array-specs-")
        lines = path.read_text().split("\n")
        max_size = int(lines[0].split("\t")[1])
        for line in filter(None, lines[1:]):
            verdict, spec, *made = line.split("\t")
            found.append((version, max_size, verdict, spec, "\t".join(made)))
    return found


def test_both_slurm_versions_were_captured() -> None:
    assert {path.name for path in CAPTURES} >= {"array-specs-22.05.txt", "array-specs-24.11.txt"}


@pytest.mark.parametrize(("version", "max_size", "verdict", "spec", "made"), cases())
def test_longrun_takes_what_sbatch_takes(
    version: str, max_size: int, verdict: str, spec: str, made: str
) -> None:
    if verdict == "OK":
        indices, throttle = made.split("\t")
        parsed = parse_array(spec)
        if indices == "N/A":  # Slurm made a plain job of it
            assert parsed is None
            return
        assert parsed is not None and parsed.spec == spec
        assert list(parsed.indices) == [int(i) for i in indices.split(",")]
        assert (parsed.throttle or 0) == int(throttle)
        return
    assert made.strip() == f"sbatch: error: {INVALID}"
    try:
        parsed = parse_array(spec)
    except UsageError as exc:
        assert f"sbatch: error: {INVALID}" in exc.message
        return
    # Accepted by longrun: only an index or a step beyond this site's MaxArraySize, which
    # longrun leaves to sbatch to refuse (in the same words) rather than ask for the limit.
    assert parsed is not None
    assert max(parsed.indices) >= max_size or any(
        int(part) >= max_size for part in spec.replace("-", ":").split(":")[1:] if part.isdigit()
    )


def test_the_throttle_and_the_spec_go_to_sbatch_as_given() -> None:
    parsed = parse_array("[0-5]%2")
    assert parsed is not None and (parsed.spec, parsed.throttle) == ("[0-5]%2", 2)
