"""The job side's functions that hand results back through globals reset all of them first: a
value left over from an earlier call (a stale `preempted` from the previous link's judging made
a timed-out link show as preempted) is never read as this call's answer."""

from __future__ import annotations

import re

from longrun.render import render_library

FUNCTION = re.compile(r"^(lr_[a-z_]+)\(\) \{\n(.*?)^\}\n", re.M | re.S)
ASSIGNED = re.compile(r"(?<![\w$])(LR_[A-Z0-9_]+)\+?=")
# State of the whole link, set up by lr_start or at the top of the library and changed on
# purpose as the link goes on (not the answer of one call).
LINK_STATE_SETTERS = {"lr_start", "lr_array_element", "lr_absolute_path"}
# Set in the environment of one command only (VAR=value command), never a result.
ONE_COMMAND = {"LR_URL"}
# A local of the caller's that a helper updates (bash's dynamic scope): the back-off of a wait
# (lr_back_off), the caller's own state, not an answer.
CALLERS_LOCAL = {"LR_DELAY"}


def functions() -> dict[str, str]:
    return {m.group(1): m.group(2) for m in FUNCTION.finditer(render_library())}


def top_level_globals() -> set[str]:
    text = FUNCTION.sub("", render_library())
    return set(ASSIGNED.findall(text))


def results() -> dict[str, set[str]]:
    """Each function's results: the globals that it alone assigns (no other function, not the
    library's top level and not lr_start), read by its callers after it returns."""
    bodies = functions()
    owners: dict[str, set[str]] = {}
    for name, body in bodies.items():
        for variable in set(ASSIGNED.findall(body)) - _locals(body):
            owners.setdefault(variable, set()).add(name)
    shared = top_level_globals()
    found: dict[str, set[str]] = {}
    for variable, names in owners.items():
        if variable in shared | ONE_COMMAND | CALLERS_LOCAL or names & LINK_STATE_SETTERS:
            continue
        if len(names) == 1:
            found.setdefault(next(iter(names)), set()).add(variable)
    return found


def _locals(body: str) -> set[str]:
    return {
        word.split("=")[0]
        for line in body.splitlines()
        if line.strip().startswith("local ")
        for word in line.split()[1:]
    }


def reset_first(body: str) -> set[str]:
    """The globals the function assigns before it runs any command (after its `local` lines
    and assignments to its own locals): reset, or given their one value."""
    reset: set[str] = set()
    for line in body.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "local ")) or re.match(r"[a-z_]+=\S*$", line):
            continue
        if not line.startswith("LR_"):
            break
        reset |= set(re.findall(r"(?:^|\s)(LR_[A-Z0-9_]+)=", line))
    return reset


# Results that several functions give (they answer the same question): Slurm's view of a job.
LOOKUP = {"LR_STATE", "LR_PREEMPTED", "LR_TIME_LEFT", "LR_START", "LR_END", "LR_REASON"}
SHARED_RESULTS = {"lr_job_info": LOOKUP, "lr_sacct_state": LOOKUP, "lr_final_state": LOOKUP}


def test_the_slurm_look_ups_reset_the_whole_answer() -> None:
    bodies = functions()
    late = {
        name: sorted(variables - reset_first(bodies[name]))
        for name, variables in SHARED_RESULTS.items()
        if variables - reset_first(bodies[name])
    }
    assert late == {}


def test_the_finder_sees_the_functions_that_answer_through_globals() -> None:
    found = results()
    # (the finder itself: these are known answers of one call each)
    assert {"LR_SECS"} <= found["lr_secs"]
    assert {"LR_FOUND"} <= found["lr_find_tagged"]
    assert {"LR_OUTCOME"} <= found["lr_rule_outcome"]
    assert {"LR_STOP_STATE", "LR_STOP_PHRASE"} <= found["lr_successor_stop"]


def test_every_function_resets_its_results_before_anything_else() -> None:
    bodies = functions()
    late = {
        name: sorted(variables - reset_first(bodies[name]))
        for name, variables in results().items()
        if variables - reset_first(bodies[name])
    }
    assert late == {}
