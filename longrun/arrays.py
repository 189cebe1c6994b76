"""Job arrays as chains: sbatch's --array index list, read as sbatch reads it (a pure parser).

Each element of an array runs as its own chain: the first link of every element is one task of
the Slurm array; its later links are plain jobs that keep the element's identity (see the
protocol's --array-element argument).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import UsageError

_RANGE = re.compile(r"^(\d+)(?:-(\d+)(?::(\d+))?)?$")
MAX_INDEX = 4_000_000  # Slurm's own limit on MaxArraySize; the site's is usually far lower


@dataclass(frozen=True)
class ArraySpec:
    """An --array value: its indices in order, and the %N throttle if one was given."""

    spec: str
    indices: tuple[int, ...]
    throttle: int | None


def parse_array(spec: str) -> ArraySpec:
    """`0-99%10`, `1,3,5-9:2`, `7`: the indices sbatch would create (duplicates once)."""
    text = spec.strip()
    body, percent, throttle_text = text.partition("%")
    throttle = None
    if percent:
        if not throttle_text.isdigit():
            raise _invalid(spec, "the throttle after % must be a whole number")
        throttle = int(throttle_text)
    indices: list[int] = []
    for item in body.split(","):
        match = _RANGE.match(item.strip())
        if not match:
            raise _invalid(spec, f"{item!r} is not an index, a range a-b or a range a-b:step")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        step = int(match.group(3)) if match.group(3) is not None else 1
        if last < first or step < 1 or last > MAX_INDEX:
            raise _invalid(spec, f"{item!r} is an empty or impossible range")
        indices.extend(range(first, last + 1, step))
    unique = tuple(dict.fromkeys(indices))
    return ArraySpec(spec=text, indices=unique, throttle=throttle)


def _invalid(spec: str, why: str) -> UsageError:
    return UsageError(
        f"--array={spec}: {why}",
        "Give the indices as sbatch takes them: --array=0-99, --array=1,3,5-9:2, --array=0-99%10.",
    )


def element_key(chain_id: str, element: int | None) -> str:
    """How an element is named where a chain id would be: `<chain>_<element>`."""
    return chain_id if element is None else f"{chain_id}_{element}"


_PATTERN_TOKEN = re.compile(r"%(\d*)([Aa])|%%")


def resolve_pattern(pattern: str, array_job: str, element: int) -> str:
    """An --output/--error pattern with %A and %a resolved for one element, as the job side's
    lr_array_pattern does: `%%` stays, a pattern with a backslash is left to Slurm as is."""
    if "\\" in pattern:
        return pattern

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "%%":
            return "%%"
        value = array_job if match.group(2) == "A" else str(element)
        return value.zfill(int(match.group(1) or 0))

    return _PATTERN_TOKEN.sub(one, pattern)


_ELEMENT_REF = re.compile(r"^(.+)_(\d+)$")


def split_element(ref: str | None) -> tuple[str | None, int | None]:
    """`CHAIN_N` or `ARRAYJOB_N` -> (CHAIN or ARRAYJOB, N); anything else as it is."""
    match = _ELEMENT_REF.match(ref.strip()) if ref else None
    if match is None:
        return ref, None
    return match.group(1), int(match.group(2))
