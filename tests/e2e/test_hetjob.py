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

# Each component takes a whole node of `multi`: the tests have the nodes to themselves, so
# that they neither wait behind other tests nor hold those up.
pytestmark = [pytest.mark.slurm, pytest.mark.disruptive]

REPORT = """\
echo "link $SLURM_LONGRUN_RESTART_COUNT job $SLURM_JOB_ID g0 ${SLURM_JOB_ID_HET_GROUP_0:-} \
g1 ${SLURM_JOB_ID_HET_GROUP_1:-} nodes1 ${SLURM_JOB_NODELIST_HET_GROUP_1:-} \
batch $SLURMD_NODENAME"
echo "component 1 runs on $(srun --het-group=1 printenv SLURMD_NODENAME)"
"""
# One component on each node: each needs a whole node.


def components_of(job: str) -> list[str]:
    """The job ids sacct shows for one heterogeneous job: JOB+0, JOB+1..."""
    out = slurm.run(["sacct", "-n", "-X", "-P", "-j", job, "-o", "JobID"]).stdout
    return sorted(set(out.split()))


def report_lines(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines() if line.startswith("link ")]


def test_a_two_component_chain_goes_on_through_a_time_limit(
    cluster: Cluster, tmp_path: Path
) -> None:
    # longrun's own pre-timeout signal (B:USR1@120: with a one-minute limit, at once) reaches
    # the batch shell of each heterogeneous link; the time limit continues the chain. (A
    # --signal of your own is passed on as in any chain; its timing is Slurm's: see README.)
    script = f"""#!/bin/bash
#SBATCH -p multi -N1 -n1 --exclusive --time=1 -o out.txt
#SBATCH hetjob
#SBATCH -p multi -N1 -n1 --exclusive --time=1
{REPORT}
[ "$SLURM_LONGRUN_RESTART_COUNT" = 0 ] && while true; do sleep 1; done
exit 0
"""
    chain = submit_chain(cluster, tmp_path, script)
    assert chain.wait_end(timeout=400) == "COMPLETED"
    links = chain.links()
    assert len(links) == 2
    assert [e["job"] for e in chain.events("pretimeout_signal")][:1] == links[:1]
    assert cluster.wait_sacct(links[0], {"TIMEOUT"}).state == "TIMEOUT"
    (verdict, _) = [e["verdict"] for e in chain.events("verdict")]
    assert verdict == "interrupted"
    out = (tmp_path / "out.txt").read_text()
    seen = report_lines(out)
    assert [line[1] for line in seen] == ["0", "1"]
    for line, job in zip(seen, links):
        # Each link's own ids: the job, its first component (itself) and its second.
        assert (line[3], line[5]) == (job, job)
        assert line[7] == str(int(job) + 1)
        assert {line[9], line[11]} == {cluster.node, cluster.node_b}  # one on each node
        assert f"component 1 runs on {line[9]}" in out
        assert components_of(job) == [f"{job}+0", f"{job}+1"]
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
        "-p", "multi", "-N1", "--exclusive", ":", "-p", "multi", "-N1", "--exclusive",
    )  # fmt: skip
    assert chain.wait_end(timeout=400) == "COMPLETED"  # (it waits for both nodes to be free)
    links = chain.links()
    assert len(links) == 3
    for job in links:
        assert components_of(job) == [f"{job}+0", f"{job}+1"]
    out = (tmp_path / "out.txt").read_text()
    seen = report_lines(out)
    assert [line[3] for line in seen] == links
    assert all({line[9], line[11]} == {cluster.node, cluster.node_b} for line in seen)
    # Each successor was queued once, found by its tag on the first component (the leader).
    queued = [str(e["successor"]) for e in chain.events("successor_queued")]
    assert queued[:2] == links[1:]
    assert_invariants(chain)
