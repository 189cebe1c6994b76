"""The Python API, the job-side helper with the example training loop, and `longrun logs`, on
the local cluster."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import longrun
from chaintest import WATCH_FAST, command, run_cli
from longrun import slurm
from slurmtest import Cluster, wait_for

pytestmark = pytest.mark.slurm

EXAMPLE = Path(__file__).resolve().parents[2] / "example"
THREE_LINKS = """#!/bin/bash
#SBATCH --output=out-%j.log
echo "link $SLURM_LONGRUN_RESTART_COUNT says hello"
[ "$SLURM_LONGRUN_RESTART_COUNT" -lt 2 ] && exit "$SLURM_LONGRUN_CONTINUE_CODE"
echo "all done"
"""


@pytest.fixture(autouse=True)
def _fast_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in WATCH_FAST.items():
        monkeypatch.setenv(name, value)


def log_parts(text: str) -> list[tuple[str, str]]:
    """(header, output) for each link in `longrun logs` output."""
    parts = re.split(r"^==> (.*) <==\n", text, flags=re.M)
    assert parts[0] == "", text
    return list(zip(parts[1::2], parts[2::2]))


def test_submit_wait_and_read_a_chain_from_python(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "job.sh").write_text(THREE_LINKS)
    state = tmp_path / "state"
    chain = longrun.submit("job.sh", ["-J", "api-test"], state_dir=state, cwd=tmp_path)
    assert chain.is_live and chain.state in {"PENDING", "RUNNING"}
    assert chain.wait(timeout=300) == "COMPLETED"
    assert [(link.number, link.state) for link in chain.links] == [
        (1, "COMPLETED"), (2, "COMPLETED"), (3, "COMPLETED")
    ]  # fmt: skip
    assert all(link.start and link.end for link in chain.links)
    assert [link.exit_code for link in chain.links] == [75, 75, 0]  # the script's own exit
    assert "# >>> longrun" in chain.script() and "says hello" in chain.script()
    again = longrun.chain(chain.job_ids[1], state_dir=state)
    assert (again.id, again.job_ids) == (chain.id, chain.job_ids)
    assert [c.id for c in longrun.chains(state_dir=state)] == [chain.id]
    # One log for the whole chain: a file per link (%j), in order, each after its header.
    result = run_cli("longrun", "logs", chain.id, "--state-dir", str(state), cwd=tmp_path)
    parts = log_parts(result.stdout)
    assert [header.split(",")[0] for header, _ in parts] == ["link 1/1000", "link 2/1000",
                                                             "link 3/1000"]  # fmt: skip
    for number, (header, output) in enumerate(parts):
        assert f"job {chain.job_ids[number]}: COMPLETED" in header
        assert header.endswith(f"out-{chain.job_ids[number]}.log")
        assert f"link {number} says hello" in output
    assert "all done" in parts[2][1] and "all done" not in parts[1][1]


def test_the_example_loop_checkpoints_when_the_signal_comes(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    # The links get the submitting environment: a Python that can import longrun.job.
    monkeypatch.setenv("LONGRUN_PYTHON", sys.executable)
    monkeypatch.setenv("LONGRUN_EXAMPLE_DIR", str(EXAMPLE))
    chain = longrun.submit(
        EXAMPLE / "train_loop.sbatch", ["--output=train.out", "--time=5"],
        ["--steps", "40", "--step-seconds", "0.25"], state_dir=state, cwd=tmp_path,
    )  # fmt: skip
    follower = subprocess.Popen(
        [command("longrun"), "logs", chain.id, "--follow", "--state-dir", str(state)],
        cwd=tmp_path, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    out = tmp_path / "train.out"
    wait_for(lambda: out.exists() and "resuming at step 0" in out.read_text(), timeout=120,
             what="the first link's loop to start")  # fmt: skip
    # Its handler is installed before it prints that: the signal is caught from here on.
    first = chain.refresh().job_ids[0]
    slurm.run(["scancel", "--batch", "--signal=USR1", first])
    assert chain.wait(timeout=240) == "COMPLETED"
    assert len(chain.links) == 2
    text = out.read_text()
    saved = re.search(r"USR1 at step (\d+): checkpoint saved", text)
    assert saved and 0 < int(saved[1]) < 40, text
    assert f"(previous link: COMPLETED): resuming at step {saved[1]}" in text
    assert "done after 40 steps" in text
    # The links share one file: `longrun logs` cuts it at each link's start.
    logs = run_cli("longrun", "logs", chain.id, "--state-dir", str(state), cwd=tmp_path).stdout
    (_, one), (_, two) = log_parts(logs)
    assert "USR1 at step" in one and "done after" not in one
    assert f"resuming at step {saved[1]}" in two and "done after 40 steps" in two
    followed, _ = follower.communicate(timeout=60)
    # What was followed is what the links wrote; its headers were printed while links ran.
    assert [part for _, part in log_parts(followed)] == [part for _, part in log_parts(logs)]


def test_wait_gives_up_at_its_timeout_and_cancel_stops_the_chain(
    cluster: Cluster, tmp_path: Path
) -> None:
    (tmp_path / "job.sh").write_text("#!/bin/bash\n#SBATCH -o /dev/null\nsleep 300\n")
    chain = longrun.submit("job.sh", state_dir=tmp_path / "state", cwd=tmp_path)
    with pytest.raises(TimeoutError):
        chain.wait(timeout=3)
    jobs = chain.refresh().job_ids
    chain.cancel()
    assert chain.state == "CANCELLED"
    for job in jobs:
        assert cluster.wait_final(job) == "CANCELLED"
    with pytest.raises(longrun.UsageError):
        longrun.submit("job.sh", ["--test-only"], state_dir=tmp_path / "state", cwd=tmp_path)
