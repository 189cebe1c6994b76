"""Heterogeneous jobs as chains, on the local cluster: every link is the same two-component
job, one component on each of the two nodes of partition `multi`; the pre-timeout signal
reaches the script, a time limit continues the chain, and each link sees its own
SLURM_*_HET_GROUP_* variables. README: Heterogeneous jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaintest import assert_invariants, submit_chain
from longrun import slurm
from slurmtest import Cluster

pytestmark = pytest.mark.slurm

REPORT = """\
echo "link $SLURM_LONGRUN_RESTART_COUNT job $SLURM_JOB_ID g0 ${SLURM_JOB_ID_HET_GROUP_0:-} \
g1 ${SLURM_JOB_ID_HET_GROUP_1:-} nodes1 ${SLURM_JOB_NODELIST_HET_GROUP_1:-}"
echo "component 1 runs on $(srun --het-group=1 printenv SLURMD_NODENAME)"
"""


def components_of(job: str) -> list[str]:
    """The job ids sacct shows for one heterogeneous job: JOB+0, JOB+1..."""
    out = slurm.run(["sacct", "-n", "-X", "-P", "-j", job, "-o", "JobID"]).stdout
    return sorted(set(out.split()))


def report_lines(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines() if line.startswith("link ")]


def test_a_two_component_chain_goes_on_through_a_time_limit(
    cluster: Cluster, tmp_path: Path
) -> None:
    script = f"""#!/bin/bash
#SBATCH -p multi -N1 -n1 -w {cluster.node} --time=1 --signal=B:USR1@30 -o out.txt
#SBATCH hetjob
#SBATCH -p multi -N1 -n1 -w {cluster.node_b} --time=1
{REPORT}
if [ "$SLURM_LONGRUN_RESTART_COUNT" = 0 ]; then
  trap 'echo "link 0 got USR1 before its time limit"' USR1
  while true; do sleep 1; done
fi
"""
    chain = submit_chain(cluster, tmp_path, script)
    assert chain.wait_end(timeout=300) == "COMPLETED"
    links = chain.links()
    assert len(links) == 2
    out = (tmp_path / "out.txt").read_text()
    assert "link 0 got USR1 before its time limit" in out
    assert cluster.wait_sacct(links[0], {"TIMEOUT"}).state == "TIMEOUT"
    seen = report_lines(out)
    assert [line[1] for line in seen] == ["0", "1"]
    for line, job in zip(seen, links):
        # Each link's own ids: the job, its first component (itself) and its second.
        assert (line[3], line[5]) == (job, job)
        assert line[7] == str(int(job) + 1) and line[9] == cluster.node_b
        assert components_of(job) == [f"{job}+0", f"{job}+1"]
    assert out.count(f"component 1 runs on {cluster.node_b}") == 2
    assert_invariants(chain)


def test_components_given_with_a_colon_are_kept_by_every_link(
    cluster: Cluster, tmp_path: Path
) -> None:
    script = f"""#!/bin/bash
#SBATCH -o out.txt
{REPORT}
[ "$SLURM_LONGRUN_RESTART_COUNT" -ge 2 ] || exit "$SLURM_LONGRUN_CONTINUE_CODE"
"""
    chain = submit_chain(
        cluster, tmp_path, script,
        "-p", "multi", "-N1", "-w", cluster.node, ":", "-p", "multi", "-N1", "-w", cluster.node_b,
    )  # fmt: skip
    assert chain.wait_end(timeout=180) == "COMPLETED"
    links = chain.links()
    assert len(links) == 3
    for job in links:
        assert components_of(job) == [f"{job}+0", f"{job}+1"]
    out = (tmp_path / "out.txt").read_text()
    assert out.count(f"component 1 runs on {cluster.node_b}") == 3
    # Each successor was queued once, found by its tag on the first component (the leader).
    queued = [str(e["successor"]) for e in chain.events("successor_queued")]
    assert queued[:2] == links[1:]
    assert_invariants(chain)
