"""sbatch_longrun's own options have their defaults in one place (longrun/wrapper_options.py):
the command line, the Python API and the plan read them there."""

from __future__ import annotations

import inspect

from longrun import api, cli
from longrun.wrapper_options import DEFAULTS, WrapperOptions


def test_the_command_line_and_the_api_take_the_declared_defaults() -> None:
    params = {p.name: p.default for p in cli.submit_command.params}
    assert params["max_restarts"] == DEFAULTS.max_restarts == 999
    assert params["retry_failed"] == DEFAULTS.retry_failed == 0
    assert params["use_verbosity"] == DEFAULTS.verbosity
    assert params["notify_on"] == DEFAULTS.notify_on
    assert params["submit_from"] == DEFAULTS.submit_from
    signature = inspect.signature(api.submit).parameters
    for name in ("max_restarts", "retry_failed", "submit_from"):
        assert signature[name].default == getattr(DEFAULTS, name)
    assert WrapperOptions() == DEFAULTS
