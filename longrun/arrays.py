"""Job arrays as chains: sbatch's --array index list, read as sbatch reads it (a pure parser).

Each element of an array runs as its own chain: the first link of every element is one task of
the Slurm array; its later links are plain jobs that keep the element's identity (see the
protocol's --array-element argument).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import UsageError

MAX_INDEX = 4_000_000  # Slurm's own limit on MaxArraySize; the site's is usually far lower
# What sbatch prints when slurmctld refuses an index list (22.05 and 24.11 alike).
INVALID = "Batch job submission failed: Invalid job array specification"


@dataclass(frozen=True)
class ArraySpec:
    """An --array value: its indices in order, and the %N throttle if one was given."""

    spec: str
    indices: tuple[int, ...]
    throttle: int | None


def parse_array(spec: str) -> ArraySpec | None:
    """The indices slurmctld makes of an --array value (None: no index at all, a plain job).

    Read as slurmctld reads it (`_parse_array_tok`, the same in 22.05 and 24.11) so that longrun
    takes exactly what sbatch takes: items split at commas (empty ones skipped), each a number,
    `a-b` or `a-b:step`, any number optionally in brackets, `%` ending an item; the throttle is
    the number after the first `%` (none when it is not a number above 0). Checked against
    sbatch on the local cluster: tests/unit/test_array_specs.py. An index above the site's
    MaxArraySize is left to sbatch to refuse, in its own words.
    """
    indices: list[int] = []
    for item in spec.split(","):
        if item and not _read_item(item, indices):
            raise UsageError(
                f"--array={spec}: sbatch: error: {INVALID}",
                "Give the indices as sbatch takes them: --array=0-99, --array=1,3,5-9:2, "
                "--array=[0-99]%10.",
            )
    if not indices:  # only commas: slurmctld makes a plain job of it
        return None
    _, percent, after = spec.partition("%")
    throttle = _atoi(after) if percent else 0
    unique = tuple(sorted(set(indices)))
    return ArraySpec(spec=spec, indices=unique, throttle=throttle if throttle > 0 else None)


def _read_item(item: str, indices: list[int]) -> bool:
    """One comma-separated item, as slurmctld's `_parse_array_tok`; False when it refuses it."""
    at = 1 if item.startswith("[") else 0
    first, at = _strtol(item, at)
    at = _skip_bracket(item, at)
    if first < 0:
        return False
    step = 1
    last = first
    if item[at : at + 1] == "-":
        last, at = _strtol(item, at + 1)
        at = _skip_bracket(item, at)
        if item[at : at + 1] == ":":
            step, at = _strtol(item, at + 1)
            at = _skip_bracket(item, at)
            if step <= 0 or step > MAX_INDEX:
                return False
        if last < first:
            return False
    if item[at : at + 1] not in ("", "%"):
        return False
    if last > MAX_INDEX:
        return False
    indices.extend(range(first, last + 1, step))
    return True


_NUMBER = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)")  # isspace, sign, digits


def _strtol(text: str, at: int) -> tuple[int, int]:
    """C's strtol in base 10: the number at `at` and where it ends; (0, at) when none is there."""
    match = _NUMBER.match(text, at)
    if match is None:
        return 0, at
    return int(match.group(1)), match.end()


def _atoi(text: str) -> int:
    return _strtol(text, 0)[0]


def _skip_bracket(text: str, at: int) -> int:
    return at + 1 if text[at : at + 1] == "]" else at


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
