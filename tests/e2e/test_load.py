"""The load run of benchmarks/load.py, small: chains at once through a preemption wave and a
slurmctld restart, every chain checked from its event logs and Slurm's accounting."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from chaintest import command
from slurmtest import Cluster, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import load  # benchmarks/ is not a package: found through sys.path

pytestmark = pytest.mark.slurm

CHAINS = 16
STEPS = 4


@pytest.mark.disruptive  # the preemption wave takes the whole node; slurmctld restarts
def test_chains_through_a_preemption_wave_and_a_controller_restart(
    cluster: Cluster, tmp_path: Path
) -> None:
    workdirs = load.write_workdirs(tmp_path, CHAINS, STEPS, owner=None)
    state_dir = tmp_path / "state"

    def wrap(argv: list[str]) -> list[str]:
        # Short links in a row are held back 30 s after the third; 2 s keeps the test short.
        return ["env", "LONGRUN_BACKOFF_SECONDS=2", command(argv[0]), *argv[1:]]

    chains = load.submit_chains(workdirs, state_dir, timeouts=0, partition="main", wrap=wrap)
    ready = load.ready_for(0.4, workdirs, STEPS)
    # Links this short may all end between the look and the preemptor's start: then nothing was
    # preempted, and the wave is tried again at the next look that finds links running.
    wait_for(
        lambda: ready() and load.preempt_running_links(str(cluster.cpus)),
        timeout=300,
        what="a preemption wave that hits running links (40% of steps done)",
    )
    wait_for(load.ready_for(0.6, workdirs, STEPS), timeout=300, what="60% of steps, links running")
    cluster.restart_daemon("slurmctld")
    wait_for(lambda: load.all_ended(state_dir, chains), timeout=600, what="every chain to end")
    checks = load.check_all(workdirs, state_dir, chains, STEPS)
    assert [c for c in checks if not c.ok(STEPS)] == []
    # The wave hit the running links: their work was done again by a successor.
    assert sum(len(c.interrupted) for c in checks) >= 1
    print(f"{CHAINS} chains: {sum(len(c.links) for c in checks)} links, "
          f"{sum(len(c.interrupted) for c in checks)} interrupted")  # fmt: skip
