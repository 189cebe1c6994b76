"""Fixtures shared by all tests: the local cluster for end-to-end tests, and its node lock."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from slurmtest import Cluster, cluster_problem


def lock_file(cluster: Cluster) -> Path:
    """Tests that disturb the whole node (preemption of everything in a partition, node
    failure) take this lock exclusively; every other Slurm test holds it shared while it runs.
    Workers of pytest-xdist are separate processes, so an flock on one file coordinates them
    all. It lies in the cluster's own folder: a suite on another cluster takes its own."""
    default = Path(cluster.conf).parent.parent / "run" / "tests-node.lock"
    return Path(os.environ.get("LONGRUN_TEST_LOCK", default))


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    """The running local cluster. With CI set, a cluster that does not answer fails the run."""
    problem = cluster_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and the local Slurm cluster is unusable: {problem}")
        pytest.skip(f"no local Slurm cluster: {problem}")
    return Cluster(os.environ["SLURM_CONF"])


@pytest.fixture(autouse=True)
def _node_lock(request: pytest.FixtureRequest) -> Iterator[None]:
    """Give each Slurm test the cluster, under a shared or (disruptive) exclusive node lock."""
    if request.node.get_closest_marker("slurm") is None:
        yield
        return
    cluster: Cluster = request.getfixturevalue("cluster")
    exclusive = request.node.get_closest_marker("disruptive") is not None
    # (asked for here, before the test, so that it is torn down after this fixture)
    workdir = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    with lock_file(cluster).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            if exclusive:
                cluster.resume_node()
            cluster.exclusive = exclusive
            yield
        finally:
            cluster.exclusive = False
            if workdir is not None:
                cluster.cancel_jobs_under(workdir)
            if exclusive:
                cluster.end_preemptors()
                cluster.resume_node()
            fcntl.flock(handle, fcntl.LOCK_UN)
