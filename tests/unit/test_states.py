"""Which end states continue a chain: the rule table, case by case as the protocol states it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from longrun import states


@pytest.mark.parametrize(
    ("verdict", "state", "preempted", "outcome"),
    [
        # recorded completed -> the chain ends COMPLETED without running the body
        ("completed", "COMPLETED", False, states.END_COMPLETED),
        ("completed", "", False, states.END_COMPLETED),
        # recorded failed -> FAILED unless --retry-failed has retries left
        ("failed", "FAILED", False, states.RETRY_OR_FAIL),
        # recorded continue -> run
        ("continue", "COMPLETED", False, states.RUN),
        ("continue", "FAILED", True, states.RUN),
        # nothing recorded and a continuing state -> run
        *[("", state, False, states.RUN) for state in states.CONTINUE_STATES],
        # terminated: CANCELLED ends the chain, any other Slurm state runs
        ("terminated", "CANCELLED", False, states.END_CANCELLED),
        ("terminated", "CANCELLED", True, states.END_CANCELLED),
        ("terminated", "TIMEOUT", False, states.RUN),
        ("terminated", "PREEMPTED", True, states.RUN),
        ("terminated", "FAILED", True, states.RUN),  # preempted in GraceTime, script exited
        # ... and with Slurm's state unknown (MinJobAge passed, no accounting) a SIGTERM with
        # no sign of an interruption is taken as a cancel: a stop is final
        ("terminated", "", False, states.END_CANCELLED),
        # interrupted: Slurm showed a time limit, preemption or node failure at the SIGTERM
        ("interrupted", "", False, states.RUN),
        ("interrupted", "TIMEOUT", False, states.RUN),
        ("interrupted", "CANCELLED", False, states.END_CANCELLED),
        # DEADLINE ends the chain, whatever the link said unless it finished or failed
        ("", "DEADLINE", False, states.END_DEADLINE),
        ("interrupted", "DEADLINE", False, states.END_DEADLINE),
        ("continue", "DEADLINE", False, states.END_DEADLINE),
        ("completed", "DEADLINE", False, states.END_COMPLETED),
        # nothing recorded and CANCELLED -> CANCELLED
        ("", "CANCELLED", False, states.END_CANCELLED),
        # nothing recorded and FAILED -> FAILED, unless PreemptTime is shown; OUT_OF_MEMORY:
        # grow the memory (--grow-mem-on-oom) or else as a failure (the job side decides)
        ("", "FAILED", False, states.END_FAILED),
        ("", "OUT_OF_MEMORY", False, states.OUT_OF_MEMORY_OUTCOME),
        ("failed", "OUT_OF_MEMORY", False, states.OUT_OF_MEMORY_OUTCOME),
        ("failed", "OUT_OF_MEMORY", True, states.OUT_OF_MEMORY_OUTCOME),
        ("continue", "OUT_OF_MEMORY", False, states.RUN),
        ("", "FAILED", True, states.RUN),
        ("", "OUT_OF_MEMORY", True, states.RUN),
        # a link that ended the chain itself
        ("ended", "COMPLETED", False, states.END_AS_RECORDED),
        # still unknown after the bounded wait -> run, with a warning
        ("", "", False, states.RUN_WARN),
        ("", "RUNNING", False, states.RUN_WARN),
        # no answer from Slurm is never an end (issue 19)
        ("terminated", states.NO_ANSWER, False, states.RUN),
        ("", states.NO_ANSWER, False, states.RUN_WARN),
        ("interrupted", states.NO_ANSWER, False, states.RUN),
        # a user's cancel wins over what the link said before it
        ("continue", "CANCELLED", False, states.END_CANCELLED),
        ("failed", "CANCELLED", False, states.END_CANCELLED),
        ("out_of_memory", "CANCELLED", False, states.END_CANCELLED),
        # undecided (failed while Slurm did not answer): a failure unless Slurm interrupted it
        ("undecided", "FAILED", False, states.RETRY_OR_FAIL),
        ("undecided", "OUT_OF_MEMORY", False, states.OUT_OF_MEMORY_OUTCOME),
        ("undecided", states.NO_ANSWER, False, states.RUN_WARN),
        ("undecided", "FAILED", True, states.RUN),
        ("undecided", "TIMEOUT", False, states.RUN),
        ("undecided", "CANCELLED", False, states.END_CANCELLED),
        # exit 0 without a verdict: its folder could not be written; the work may not be done
        ("", "COMPLETED", False, states.RUN_WARN),
    ],
)
def test_judge(verdict: str, state: str, preempted: bool, outcome: str) -> None:
    assert states.judge(verdict, state, preempted).outcome == outcome


def test_deadline_is_no_reason_to_continue() -> None:
    assert "DEADLINE" not in states.CONTINUE_STATES
    assert states.CHAIN_DEADLINE in states.CHAIN_END_STATES
    assert states.judge("", "DEADLINE", False).outcome == states.END_DEADLINE
    assert states.judge("", "TIMEOUT", False).outcome in states.RUN_OUTCOMES


def test_the_last_rule_matches_everything() -> None:
    assert states.judge("nonsense", "NONSENSE", True).outcome == states.RUN_WARN


@pytest.mark.parametrize(
    ("raw", "base"),
    [
        ("CANCELLED by 1000", "CANCELLED"),
        ("COMPLETED+", "COMPLETED"),
        ("", ""),
        (" RUNNING ", "RUNNING"),
    ],
)
def test_base_state(raw: str, base: str) -> None:
    assert states.base_state(raw) == base


def test_final_and_active_states_do_not_overlap() -> None:
    assert not set(states.FINAL_STATES) & set(states.ACTIVE_STATES)
    assert states.is_final("TIMEOUT") and states.is_active("PENDING")
    assert not states.is_final("RUNNING") and not states.is_active("COMPLETED")


def test_slurm_state_names_are_spelled_only_in_the_rule_table() -> None:
    """Every other module and template takes them from longrun/states.py (rendered or imported)."""
    names = {*states.FINAL_STATES, *states.ACTIVE_STATES, states.UNKNOWN}
    pattern = re.compile(r"(?<![\w.])(" + "|".join(sorted(names)) + r")(?![\w])")
    root = Path(states.__file__).parent
    files = [p for p in root.glob("*.py") if p.name != "states.py"]
    files += sorted((root.parent / "templates").rglob("*.j2"))
    if not (root.parent / "templates").is_dir():  # an installed package keeps them inside
        files += sorted((root / "templates").rglob("*.j2"))
    found = []
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in pattern.finditer(line):
                # sbatch's --mail-type STAGE_OUT is a kind of mail, not a job state.
                if path.name == "mail.py" and match.group(1) == "STAGE_OUT":
                    continue
                found.append(f"{path.name}:{number}: {line.strip()}")
    assert len(files) > 10
    assert found == []
