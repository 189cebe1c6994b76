"""Rendering the job side: pure functions from a plan (and longrun's tables) to text.

The helper library is the same for every chain of a longrun version: it is rendered from the
rule table (longrun/states.py) and the protocol (longrun/protocol.py) only. The link script holds
the chain's own settings and the library's checksum. Every value that comes from the user goes
through `shquote` (or, inside comments, `comment`); nothing the user typed is ever placed where
bash would evaluate it.
"""

from __future__ import annotations

import hashlib
import shlex
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from . import __version__, protocol, slurm_output, states
from .plan import LinkPlan

PACKAGE_TEMPLATES = Path(__file__).parent / "templates"  # inside an installed wheel
CHECKOUT_TEMPLATES = Path(__file__).parent.parent / "templates"  # in a source checkout


def templates_dir() -> Path:
    for candidate in (PACKAGE_TEMPLATES, CHECKOUT_TEMPLATES):
        if (candidate / "link.sh.j2").is_file():
            return candidate
    raise FileNotFoundError(
        f"longrun's templates are missing (looked in {PACKAGE_TEMPLATES} and "
        f"{CHECKOUT_TEMPLATES}): reinstall the package"
    )


def shquote(value: object) -> str:
    """One shell word that bash reads back as exactly `value`, with nothing evaluated."""
    return shlex.quote(str(value))


def comment(value: object) -> str:
    """Text that stays inside a `#` comment line."""
    return str(value).replace("\r", "\\r").replace("\n", "\\n")


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # bash uses "{#" (${#array[@]}); Jinja comments get delimiters bash never contains.
        comment_start_string="<%#",
        comment_end_string="#%>",
    )
    env.filters["shquote"] = shquote
    env.filters["comment"] = comment
    return env


def rule_patterns(rule: states.Rule) -> list[str]:
    """bash case patterns for one rule, matching "verdict:state:preempted (0 or 1)"."""
    verdict = "*" if rule.verdict == "*" else rule.verdict
    preempted = "*" if rule.preempted is None else ("1" if rule.preempted else "0")
    return [f"{verdict}:{state}:{preempted}" for state in rule.states]


def _rendered_rules() -> list[dict[str, Any]]:
    """The rule table as bash case branches; a pattern an earlier rule has is left out (the
    first match wins on both sides, and bash would warn of a branch that never matches)."""
    seen: set[str] = set()
    rules = []
    for rule in states.RULES:
        patterns = [p for p in rule_patterns(rule) if p not in seen]
        seen.update(patterns)
        if patterns:
            rules.append({"patterns": patterns, "outcome": rule.outcome, "why": rule.why})
    return rules


def _tables() -> dict[str, Any]:
    """What both templates may use: longrun's version, its rule table and its protocol."""
    return {
        "version": __version__,
        "paths": protocol.PATHS,
        "arguments": protocol.ARGUMENTS,
        "tag_prefix": protocol.TAG_PREFIX,
        "batch_signals": protocol.BATCH_SIGNALS,
        "no_accounting": slurm_output.NO_ACCOUNTING,
        "progress_at": {"start": protocol.PROGRESS_AT_START, "end": protocol.PROGRESS_AT_END},
        "learned_keys": protocol.LEARNED_KEYS,
        "submit": {
            "login": protocol.SUBMIT_FROM_LOGIN,
            "choices": protocol.SUBMIT_FROM,
            "refusals": protocol.SUBMIT_REFUSALS,
            "limits": protocol.SUBMIT_LIMITS,
            "request_format": protocol.REQUEST_FORMAT,
        },
        "rules": _rendered_rules(),
        "answers": {
            "final": protocol.ANSWER_FINAL,
            "forgotten": protocol.ANSWER_FORGOTTEN,
            "none": protocol.ANSWER_NONE,
        },
        "states": {
            "final": states.FINAL_STATES,
            "active": states.ACTIVE_STATES,
            "cancelled": states.CANCELLED_STATES,
            "interrupt_reasons": states.INTERRUPT_REASONS,
            "interrupt_states": states.INTERRUPT_STATES,
            "never_requeued": states.NEVER_REQUEUED,
            "node_lost": states.NODE_LOST_STATES,
            "node_lost_causes": states.NODE_LOST_CAUSES,
            "not_the_works_fault": states.NOT_THE_WORKS_FAULT,
            "out_of_memory": states.OUT_OF_MEMORY_STATES,
            "running": states.RUNNING,
            "still_running": states.STILL_RUNNING_STATES,
            "cancel_seen": states.CANCEL_SEEN_STATES,
            "no_answer": states.NO_ANSWER,
            "time_limit_reason": states.TIME_LIMIT_REASON,
            "failed_state": states.FAILED,
            "successor_stops": [
                {"state": state, "chain_state": chain_state, "phrase": phrase}
                for state, (chain_state, phrase) in states.SUCCESSOR_STOPS.items()
            ],
        },
        "verdicts": {
            "completed": states.VERDICT_COMPLETED,
            "continue": states.VERDICT_CONTINUE,
            "failed": states.VERDICT_FAILED,
            "out_of_memory": states.VERDICT_OUT_OF_MEMORY,
            "interrupted": states.VERDICT_INTERRUPTED,
            "terminated": states.VERDICT_TERMINATED,
            "ended": states.VERDICT_ENDED,
            "undecided": states.VERDICT_UNDECIDED,
        },
        "outcomes": {
            "run": states.RUN,
            "run_warn": states.RUN_WARN,
            "retry_or_fail": states.RETRY_OR_FAIL,
            "end_as_recorded": states.END_AS_RECORDED,
            "end_prefix": states.END_PREFIX,
            "out_of_memory": states.OUT_OF_MEMORY_OUTCOME,
        },
        "chain_states": {
            "completed": states.CHAIN_COMPLETED,
            "failed": states.CHAIN_FAILED,
            "cancelled": states.CHAIN_CANCELLED,
            "max_restarts": states.CHAIN_MAX_RESTARTS,
            "no_progress": states.CHAIN_NO_PROGRESS,
            "time_budget": states.CHAIN_TIME_BUDGET,
        },
    }


@lru_cache(maxsize=1)
def render_library() -> str:
    """The helper library: byte-identical for every chain of this longrun version."""
    return _environment().get_template("library.sh.j2").render(**_tables())


def library_sha256(text: str) -> str:
    """The checksum a link script checks the library against (sha256sum's hex digest)."""
    return hashlib.sha256(text.encode()).hexdigest()


def render_link_script(plan: LinkPlan) -> str:
    """The link script for this plan. Deterministic: the same plan gives the same bytes."""
    template = _environment().get_template("link.sh.j2")
    return template.render(plan=plan, library_sha256=library_sha256(render_library()), **_tables())
