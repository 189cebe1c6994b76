"""The harness itself on the real cluster: each end state can be caused and is seen in sacct."""

from __future__ import annotations

from pathlib import Path

import pytest

from slurmtest import Cluster

pytestmark = pytest.mark.slurm


def test_completed_job_is_in_sacct(cluster: Cluster, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    job = cluster.sbatch("-o", str(out), "--wrap", "echo hello from $SLURM_JOB_ID")
    assert cluster.wait_final(job) == "COMPLETED"
    record = cluster.wait_sacct(job, {"COMPLETED"})
    assert record.exit_code == "0:0"
    assert out.read_text().strip() == f"hello from {job}"


def test_time_limit_gives_timeout(cluster: Cluster, tmp_path: Path) -> None:
    job = cluster.sbatch("--time=1", "-o", str(tmp_path / "out"), "--wrap", "sleep 300")
    assert cluster.wait_final(job, timeout=180) == "TIMEOUT"
    cluster.wait_sacct(job, {"TIMEOUT"})


@pytest.mark.disruptive
def test_preemption_cancel_mode(cluster: Cluster, tmp_path: Path) -> None:
    job = cluster.sbatch("-p", "main", "-o", str(tmp_path / "out"), "--wrap", "sleep 300")
    preemptor = cluster.preempt(job)
    assert cluster.wait_final(job, timeout=90) == "PREEMPTED"
    cluster.wait_sacct(job, {"PREEMPTED"})
    assert cluster.preempt_time(job) is not None
    assert cluster.wait_final(preemptor) == "COMPLETED"


@pytest.mark.disruptive
def test_preemption_requeue_mode(cluster: Cluster, tmp_path: Path) -> None:
    job = cluster.sbatch("-p", "requeue", "-o", str(tmp_path / "out"), "--wrap", "sleep 300")
    preemptor = cluster.preempt(job)
    # Requeued: same job id, back to PENDING; the preempted run is in sacct as PREEMPTED (a run
    # that is not the last one: only `sacct -D` lists it once the job runs again).
    assert cluster.wait_sacct_run(job, {"PREEMPTED"}, timeout=90).state == "PREEMPTED"
    cluster.wait_state(job, {"PENDING", "RUNNING"}, timeout=60)
    assert cluster.wait_final(preemptor) == "COMPLETED"
    cluster.wait_state(job, {"RUNNING"}, timeout=60)
    restarts = cluster.job_field(job, "Restarts")
    assert restarts == "1"
    cluster.cancel(job)
    assert cluster.wait_final(job) == "CANCELLED"


@pytest.mark.disruptive
def test_node_failure_without_requeue(cluster: Cluster, tmp_path: Path) -> None:
    job = cluster.sbatch("--no-requeue", "-o", str(tmp_path / "out"), "--wrap", "sleep 300")
    cluster.wait_state(job, {"RUNNING"})
    with cluster.node_down():
        assert cluster.wait_final(job, timeout=60) == "NODE_FAIL"
    cluster.wait_sacct(job, {"NODE_FAIL"})


def test_scancel_gives_cancelled(cluster: Cluster, tmp_path: Path) -> None:
    job = cluster.sbatch("-o", str(tmp_path / "out"), "--wrap", "sleep 300")
    cluster.wait_state(job, {"RUNNING"})
    cluster.cancel(job)
    assert cluster.wait_final(job) == "CANCELLED"
    cluster.wait_sacct(job, {"CANCELLED"})
