"""Warnings about scripts written to continue themselves under plain sbatch.

Many scripts requeue or resubmit themselves from a signal trap (`scontrol requeue
$SLURM_JOB_ID` in a USR1 trap, the NERSC recipe; `sbatch $0` on USR1 or TERM). Under longrun
the chain already does that: a requeue restarts the same link (harmless, the queued successor
waits), but a resubmission starts a copy of the work outside the chain, next to the successor.
This reads the script's text; it runs nothing and refuses nothing.
"""

from __future__ import annotations

import re

TRAP = re.compile(
    r"""^\s*trap\s+(?:--\s+)?(?P<q>['"]?)(?P<handler>.*?)(?P=q)\s+(?P<signals>[\w\s-]+?)\s*(?:;.*)?$"""
)
FUNCTION = re.compile(r"^\s*(?:function\s+)?(?P<name>[A-Za-z_][\w-]*)\s*(?:\(\s*\))?\s*\{?\s*$")
REQUEUE = re.compile(r"\bscontrol\s+requeue\b")
RESUBMIT = re.compile(r"(?:^|[\s;&|(`])sbatch\b")


def self_continuing(text: str) -> list[str]:
    """One line per trap whose handler requeues or resubmits the job, saying what to do."""
    lines = text.split("\n")
    found = []
    for number, line in enumerate(lines, 1):
        match = TRAP.match(line)
        if not match:
            continue
        handler = match.group("handler")
        body = handler if " " in handler.strip() else _function_body(lines, handler.strip())
        if REQUEUE.search(body):
            found.append(
                f"line {number}: your trap requeues the job; longrun already continues it after "
                "a time limit or preemption (a requeue only reruns this link): remove the trap"
            )
        elif RESUBMIT.search(body):
            found.append(
                f"line {number}: your trap resubmits the job with sbatch; longrun already queues "
                "a successor, so the work would run twice: remove the trap"
            )
    return found


def _function_body(lines: list[str], name: str) -> str:
    """The text of shell function `name` (from its definition to the first `}` line)."""
    for start, line in enumerate(lines):
        match = FUNCTION.match(line)
        if match is None or match.group("name") != name:
            continue
        if "}" in line.split("{", 1)[-1]:
            return line
        body = []
        for inner in lines[start + 1 :]:
            if inner.strip().startswith("}"):
                break
            body.append(inner)
        return "\n".join(body)
    return ""
