"""Multi-node links on the local cluster's two nodes (partition `multi`: two slurmd daemons on
this machine, each its own node)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chaintest import assert_invariants, environment, submit_chain
from slurmtest import Cluster

pytestmark = pytest.mark.slurm

TASK = """\
import os, signal, sys, time
rank, node = os.environ["SLURM_PROCID"], os.environ["SLURMD_NODENAME"]
def stop(*_):
    print(f"task {rank} on {node} got USR1", flush=True)
    sys.exit(0)
signal.signal(signal.SIGUSR1, stop)
print(f"task {rank} ready on {node}", flush=True)
while True:
    time.sleep(0.2)
"""


def test_the_pre_timeout_signal_reaches_the_tasks_on_every_node(
    cluster: Cluster, tmp_path: Path
) -> None:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "task.py").write_text(TASK)
    script = """#!/bin/bash
#SBATCH -p multi
#SBATCH --nodes=2 --ntasks-per-node=1
#SBATCH --signal=B:USR1@5 --time=10
#SBATCH -o out.txt
if [ "$SLURM_LONGRUN_RESTART_COUNT" -ge 1 ]; then echo "link 1 ran"; exit 0; fi
srun python3 task.py
"""
    chain = submit_chain(cluster, tmp_path, script)
    chain.wait_link_running(0)
    cluster.wait_file(tmp_path / "out.txt", "task 1 ready")
    cluster.wait_file(tmp_path / "out.txt", "task 0 ready")
    chain.signal_when_ready(tmp_path, "ready")
    assert chain.wait_end(timeout=120) == "COMPLETED"
    out = (tmp_path / "out.txt").read_text()
    got = set(re.findall(r"task \d on (\S+) got USR1", out))
    assert got == {cluster.node, cluster.node_b}, out
    assert "link 1 ran" in out


def test_nodes_and_tasks_per_node_reach_every_link(cluster: Cluster, tmp_path: Path) -> None:
    script = """#!/bin/bash
#SBATCH -p multi
#SBATCH --nodes=2
#SBATCH -o out.txt
srun bash -c 'echo "link $SLURM_LONGRUN_RESTART_COUNT task $SLURM_PROCID of $SLURM_NTASKS on $SLURMD_NODENAME nodes $SLURM_NNODES"'
[ "$SLURM_LONGRUN_RESTART_COUNT" -ge 1 ] || exit "$SLURM_LONGRUN_CONTINUE_CODE"
"""
    chain = submit_chain(cluster, tmp_path, script, "--ntasks-per-node=2")
    assert chain.wait_end() == "COMPLETED"
    lines = (tmp_path / "out.txt").read_text().splitlines()
    for link in (0, 1):
        mine = [line for line in lines if line.startswith(f"link {link} task")]
        assert len(mine) == 4 and all(line.endswith("nodes 2") for line in mine), lines
        assert {line.split(" on ")[1].split()[0] for line in mine} == {
            cluster.node, cluster.node_b,
        }  # fmt: skip


@pytest.mark.disruptive
def test_loss_of_a_node_that_is_not_the_batch_node_continues_the_chain(
    cluster: Cluster, tmp_path: Path
) -> None:
    # The tasks on the lost node die and srun may exit non-zero before the job ends: that is
    # the node's failure, not the script's.
    script = """#!/bin/bash
#SBATCH -p multi
#SBATCH --nodes=2 --ntasks-per-node=1
#SBATCH -o out.txt
if [ "$SLURM_LONGRUN_RESTART_COUNT" -ge 1 ]; then echo "link 1 ran after $SLURM_LONGRUN_PREVIOUS_STATE"; exit 0; fi
srun bash -c 'echo "ready on $SLURMD_NODENAME"; while true; do sleep 0.2; done'
echo "srun exited $?"
"""
    chain = submit_chain(cluster, tmp_path, script, "--no-requeue")
    first = chain.wait_link_running(0)
    cluster.wait_file(tmp_path / "out.txt", f"ready on {cluster.node_b}")
    with cluster.node_down(cluster.node_b):
        assert cluster.wait_final(first, timeout=60) == "NODE_FAIL"
    assert chain.wait_end(timeout=180) == "COMPLETED"
    assert len(chain.links()) == 2
    verdict = (chain.folder / "links" / first / "verdict").read_text().strip()
    assert verdict in ("interrupted", "terminated"), verdict
    assert "link 1 ran after NODE_FAIL" in (tmp_path / "out.txt").read_text()


@pytest.mark.disruptive
def test_a_node_that_dies_silently_under_srun_continues_the_chain(
    cluster: Cluster, tmp_path: Path
) -> None:
    # srun --kill-on-bad-exit gives up as soon as the task on the dead node is gone, and the
    # script exits non-zero while slurmctld still shows the job RUNNING: only after
    # SlurmdTimeout (20 s on the local cluster) does it mark the node down.
    script = """#!/bin/bash
#SBATCH -p multi
#SBATCH --nodes=2 --ntasks-per-node=1
#SBATCH -o out.txt
if [ "$SLURM_LONGRUN_RESTART_COUNT" -ge 1 ]; then echo "link 1 ran after $SLURM_LONGRUN_PREVIOUS_STATE"; exit 0; fi
srun --kill-on-bad-exit=1 bash -c 'echo "ready on $SLURMD_NODENAME"; while true; do sleep 0.2; done'
status=$?
echo "srun exited $status"
exit $status
"""
    env = environment(LONGRUN_NODE_WAIT_SECONDS="90")
    chain = submit_chain(cluster, tmp_path, script, "--no-requeue", env=env)
    first = chain.wait_link_running(0)
    cluster.wait_file(tmp_path / "out.txt", f"ready on {cluster.node_b}")
    with cluster.node_dead(cluster.node_b, first):
        cluster.wait_file(tmp_path / "out.txt", "srun exited", timeout=60)
        assert cluster.wait_final(first, timeout=120) in ("NODE_FAIL", "FAILED")
    assert chain.wait_end(timeout=240) == "COMPLETED"
    verdict = (chain.folder / "links" / first / "verdict").read_text().strip()
    assert verdict == "interrupted", verdict
    assert len(chain.links()) == 2 and "link 1 ran after" in (tmp_path / "out.txt").read_text()


def test_a_failure_near_the_time_limit_stays_a_failure(cluster: Cluster, tmp_path: Path) -> None:
    # The script fails 40 s into a one-minute link on two nodes: the link waits for Slurm to
    # show a lost node (SlurmdTimeout 20 s + 30 s here, not 330 s), and the time limit's SIGTERM
    # comes meanwhile. The failure stands (measured before: `interrupted`, the chain went on).
    script = """#!/bin/bash
#SBATCH -p multi
#SBATCH --nodes=2 --ntasks-per-node=1
#SBATCH --time=1
#SBATCH -o out.txt
srun bash -c 'sleep 40; exit 3'
"""
    chain = submit_chain(cluster, tmp_path, script)
    first = chain.wait_link_running(0)
    assert chain.wait_end(timeout=240) == "FAILED"
    (check,) = [e for e in chain.events("node_check") if e["job"] == first]
    assert check["seconds"] == "50"
    verdict = (chain.folder / "links" / first / "verdict").read_text().strip()
    assert verdict == "failed", verdict
    assert chain.body_runs() == [first]
    assert_invariants(chain)
