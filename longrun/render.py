"""Rendering the link script: a pure function from a LinkPlan to text.

Every value that comes from the user goes through `shquote` (or, inside comments, `comment`);
nothing the user typed is ever placed where bash would evaluate it.
"""

from __future__ import annotations

import shlex
from functools import lru_cache
from pathlib import Path

import jinja2

from . import states
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
    """bash case patterns for one rule, matching "VERDICT:STATE:PREEMPTED"."""
    verdict = "*" if rule.verdict == "*" else rule.verdict
    preempted = "*" if rule.preempted is None else ("1" if rule.preempted else "0")
    return [f"{verdict}:{state}:{preempted}" for state in rule.states]


def render_link_script(plan: LinkPlan) -> str:
    """The link script for this plan. Deterministic: the same plan gives the same bytes."""
    template = _environment().get_template("link.sh.j2")
    rules = [
        {"patterns": rule_patterns(rule), "outcome": rule.outcome, "why": rule.why}
        for rule in states.RULES
    ]
    return template.render(
        plan=plan,
        rules=rules,
        states={
            "final": states.FINAL_STATES,
            "active": states.ACTIVE_STATES,
            "cancelled": states.CANCELLED_STATES,
            "interrupt_reasons": states.INTERRUPT_REASONS,
            "interrupt_states": states.INTERRUPT_STATES,
        },
        verdicts={
            "completed": states.VERDICT_COMPLETED,
            "continue": states.VERDICT_CONTINUE,
            "failed": states.VERDICT_FAILED,
            "interrupted": states.VERDICT_INTERRUPTED,
            "terminated": states.VERDICT_TERMINATED,
            "ended": states.VERDICT_ENDED,
        },
        outcomes={
            "run": states.RUN,
            "run_warn": states.RUN_WARN,
            "retry_or_fail": states.RETRY_OR_FAIL,
            "end_as_recorded": states.END_AS_RECORDED,
        },
        chain_states={
            "completed": states.CHAIN_COMPLETED,
            "failed": states.CHAIN_FAILED,
            "max_restarts": states.CHAIN_MAX_RESTARTS,
        },
    )
