"""The Python API and the job-side helper, without Slurm: recorded chains in a state folder,
and the helper's answers from the environment a link gives it. The API against the real
cluster: tests/e2e/test_api.py."""

from __future__ import annotations

import inspect
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import longrun
from longrun import job, protocol
from statetest import state_with

CHAINS = Path(__file__).parent / "data" / "chains"


def test_a_chain_by_its_id_or_any_of_its_jobs(tmp_path: Path) -> None:
    root = state_with(tmp_path, "three_links", "timeout")
    chain_id = json.loads((CHAINS / "three_links" / protocol.META).read_text())["chain_id"]
    chain = longrun.chain(chain_id, state_dir=root)
    assert (chain.id, chain.state, chain.is_live) == (chain_id, "COMPLETED", False)
    assert [link.number for link in chain.links] == [1, 2, 3]
    assert chain.job_ids == [link.job_id for link in chain.links]
    assert longrun.chain(chain.job_ids[1], state_dir=root).id == chain_id
    assert longrun.chain(int(chain.job_ids[2]), state_dir=root).id == chain_id
    last = chain.links[-1]
    assert (last.state, last.exit_code) == ("COMPLETED", 0)
    assert last.start is not None and last.end is not None and last.start <= last.end
    assert chain.elements == {}
    assert repr(chain) == f"<longrun.Chain {chain_id} COMPLETED>"


def test_every_chain_newest_first(tmp_path: Path) -> None:
    root = state_with(tmp_path, "three_links", "timeout", "failed")
    found = longrun.chains(state_dir=root)
    assert [c.id for c in found] == sorted((c.id for c in found), reverse=True)
    assert {c.state for c in found} == {"COMPLETED", "FAILED"}
    assert longrun.chains(state_dir=root, live_only=True) == []


def test_the_errors_are_the_command_lines(tmp_path: Path) -> None:
    root = state_with(tmp_path, "failed")
    with pytest.raises(longrun.ChainNotFoundError):
        longrun.chain("424242", state_dir=root)
    with pytest.raises(longrun.UsageError, match="whole number"):
        longrun.submit("job.sh", max_restarts=-1, state_dir=root)
    with pytest.raises(longrun.UsageError, match="lists of arguments"):
        longrun.submit("job.sh", sbatch_args="--time=5", state_dir=root)  # type: ignore[arg-type]
    assert issubclass(longrun.UsageError, longrun.LongrunError)


def test_import_longrun_loads_nothing_until_asked() -> None:
    code = (
        "import sys, longrun, longrun.job; "
        "print(sorted(m for m in ('click', 'jinja2', 'loguru', 'longrun.api') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_public_name_has_a_docstring() -> None:
    from longrun import api

    missing = []
    for module in (api, job):
        for name, value in vars(module).items():
            if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
                continue
            if not inspect.getdoc(value):
                missing.append(name)
            for attr, member in vars(value).items() if inspect.isclass(value) else ():
                target = member.fget if isinstance(member, property) else member
                if isinstance(target, classmethod):
                    target = target.__func__
                if not attr.startswith("_") and callable(target) and not inspect.getdoc(target):
                    missing.append(f"{name}.{attr}")
    assert missing == []


# --- longrun.job ------------------------------------------------------------------------------
def test_outside_a_chain_the_helper_still_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SLURM_"):
            monkeypatch.delenv(name)
    assert (job.in_chain(), job.restart_count(), job.max_restarts()) == (False, 0, None)
    assert (job.previous_state(), job.initial_job_id(), job.continue_code()) == (None, None, 75)
    assert job.pretimeout_signal() == "USR1"


def test_in_a_link_the_helper_reads_what_the_link_exported(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "SLURM_LONGRUN_CHAIN_ID": "20261126-120000-abcd", "SLURM_LONGRUN_RESTART_COUNT": "2",
        "SLURM_LONGRUN_MAX_RESTARTS": "10", "SLURM_LONGRUN_INITIAL_JOB_ID": "100",
        "SLURM_LONGRUN_PREVIOUS_JOB_ID": "102", "SLURM_LONGRUN_PREVIOUS_STATE": "TIMEOUT",
        "SLURM_LONGRUN_CONTINUE_CODE": "75", "SLURM_LONGRUN_SIGNAL": "USR2", "SLURM_JOB_ID": "103",
    }  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert job.in_chain() and job.chain_id() == "20261126-120000-abcd"
    assert (job.restart_count(), job.max_restarts(), job.initial_job_id()) == (2, 10, "100")
    assert (job.previous_job_id(), job.previous_state()) == ("102", "TIMEOUT")
    assert job.pretimeout_signal() == "USR2"


def test_the_handler_turns_the_signal_into_a_request() -> None:
    code = """
import os, signal, sys
from longrun import job
job.install_handler()
assert not job.stop_requested()
os.kill(os.getpid(), signal.SIGUSR2)
os.kill(os.getpid(), signal.SIGTERM)
print(job.stop_requested(), job.signals_received())
job.request_continue()
"""
    env = {**os.environ, "SLURM_LONGRUN_SIGNAL": "USR2"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.stdout == "True ['USR2', 'TERM']\n", result.stderr
    assert result.returncode == 75


def test_a_signal_name_that_is_none_is_refused() -> None:
    with pytest.raises(ValueError, match="not a signal"):
        job.install_handler(["NOPE"])
    # A name with its SIG prefix and a number are signals too: both get the handler.
    job.install_handler(["SIGUSR1", str(int(signal.SIGUSR2))])
    try:
        for number in (signal.SIGUSR1, signal.SIGUSR2):
            assert signal.getsignal(number) not in (signal.SIG_DFL, signal.SIG_IGN, None)
    finally:
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        signal.signal(signal.SIGUSR2, signal.SIG_DFL)
