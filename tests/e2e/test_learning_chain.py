"""A chain that learns, on the local cluster: it steers around a node that failed (node
failure, --node-check), asks for more memory after Slurm itself recorded OUT_OF_MEMORY (memory
is enforced: task/cgroup), ends when its links make no progress, keeps a total time budget by
cutting the last link's real time limit, and goes on through links the backfill scheduler
shortened (--time-min). Each test checks the promises afterwards. The chains run in partition
`multi`: its two nodes, and no other test preempts its jobs (each chain has the links its test
means)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from chaintest import Chain, assert_invariants, run_cli, slurm_epoch_of, submit_chain
from longrun import slurm
from slurmtest import Cluster, sacct_records

pytestmark = pytest.mark.slurm


def status_json(chain: Chain) -> Any:
    result = run_cli(
        "longrun", "status", "--json", "--state-dir", str(chain.state_dir), chain.chain_id,
        cwd=chain.state_dir.parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def body_nodes(chain: Chain) -> list[str]:
    """The node of each link that ran the script, in order."""
    ran = set(chain.body_runs())
    return [str(e["node"]) for e in chain.events("link_started") if str(e["job"]) in ran]


def test_a_failing_node_check_moves_the_chain_to_the_other_node_for_free(
    cluster: Cluster, tmp_path: Path
) -> None:
    # The check fails on the first node it runs on, whichever that is (the other tests keep
    # the nodes busy in their own ways), and passes afterwards.
    check = tmp_path / "check.sh"
    check.write_text(
        '#!/bin/bash\necho "node-check on $SLURMD_NODENAME"\n'
        f"mkdir {tmp_path}/checked 2>/dev/null && exit 1\nexit 0\n"
    )
    check.chmod(0o755)
    script = '#!/bin/bash\n#SBATCH -p multi -o out.txt\necho "script on $SLURMD_NODENAME"\n'
    # --max-restarts 0: one link allowed, and the hand-over does not count.
    chain = submit_chain(
        cluster, tmp_path, script, wrapper=("--max-restarts", "0", "--node-check", str(check))
    )
    assert chain.wait_end(timeout=120) == "COMPLETED"
    (failed,) = chain.events("node_check_failed")
    bad = failed["nodes"]
    good = cluster.node_b if bad == cluster.node else cluster.node
    assert body_nodes(chain) == [good]
    output = (tmp_path / "out.txt").read_text().splitlines()
    assert f"node-check on {bad}" in output and f"script on {bad}" not in output
    (handed,) = chain.events("handed_over")
    view = status_json(chain)
    assert view["free_links"] == 1 and view["avoided_nodes"] == [bad]
    first, second = view["links"]
    assert (first["nodes"], first["avoided"], first["handed_over"]) == (
        bad, True, handed["reason"],
    )  # fmt: skip
    assert (second["nodes"], second["avoided"], second["handed_over"]) == (good, False, None)
    assert cluster.job_field(second["job_id"], "ExcNodeList") == bad
    assert_invariants(chain)


@pytest.mark.disruptive
def test_no_later_body_runs_on_a_node_that_failed(cluster: Cluster, tmp_path: Path) -> None:
    # Three scripts in all: the first runs until its node goes; the second asks for a new link.
    script = """#!/bin/bash
#SBATCH -p multi -o out.txt --no-requeue
echo "script on $SLURMD_NODENAME"
runs=$(grep -c '^script on ' out.txt)
if [ "$runs" -eq 1 ]; then while :; do sleep 1; done; fi
[ "$runs" -ge 3 ] || exit "$SLURM_LONGRUN_CONTINUE_CODE"
"""
    chain = submit_chain(cluster, tmp_path, script)
    first = chain.wait_link_running(0)
    (started,) = chain.events("link_started")
    lost = str(started["node"])
    with cluster.node_down(lost):  # down, and back at once (ReturnToService=2 too)
        assert cluster.wait_final(first, timeout=60) == "NODE_FAIL"
    assert chain.wait_end(timeout=180) == "COMPLETED"
    nodes = body_nodes(chain)
    assert len(nodes) == 3 and lost not in nodes[1:], nodes
    # The successor queued before the failure may have started on the node once it was back:
    # it then handed over, for free.
    for handed in chain.events("handed_over"):
        assert handed["reason"] == f"node {lost} is avoided by this chain"
    avoided = chain.events("nodes_avoided")
    assert {(e["nodes"], e["cause"]) for e in avoided} == {(lost, "NODE_FAIL")}
    assert status_json(chain)["links"][0]["avoided"] is True
    assert_invariants(chain)


def test_after_running_out_of_memory_the_chain_asks_for_more(
    cluster: Cluster, tmp_path: Path
) -> None:
    # 300 MiB: too much for 100M and 200M (link 1 in an srun step, link 3 in the batch step,
    # each recorded by Slurm), enough with 400M.
    script = f"""#!/bin/bash
#SBATCH -p multi -o out.txt --mem=100M
echo "link $SLURM_LONGRUN_LINK has $SLURM_MEM_PER_NODE MB"
grab='import time; x = bytearray(300 * 2**20); time.sleep(1)'
if [ "$SLURM_LONGRUN_LINK" -eq 1 ]; then srun {sys.executable} -c "$grab"; else {sys.executable} -c "$grab"; fi
"""
    chain = submit_chain(cluster, tmp_path, script, wrapper=("--grow-mem-on-oom", "2:400M"))
    assert chain.wait_end(timeout=180) == "COMPLETED"
    grown = [(e["before"], e["after"]) for e in chain.events("memory_grown")]
    assert grown == [("100", "200"), ("200", "400")]
    output = (tmp_path / "out.txt").read_text()
    assert [line for line in output.splitlines() if " MB" in line] == [
        "link 1 has 100 MB", "link 3 has 200 MB", "link 5 has 400 MB",
    ]  # fmt: skip
    links = status_json(chain)["links"]
    assert [link["memory"] for link in links] == [
        "mem=100", "mem=100", "mem=200", "mem=200", "mem=400",
    ]  # fmt: skip
    # Slurm itself recorded them: a step of link 1, the whole of link 3.
    link1, link3 = links[0]["job_id"], links[2]["job_id"]
    assert "OUT_OF_MEMORY" in step_states(link1).values()
    assert step_states(link3)[link3] == "OUT_OF_MEMORY"
    assert_invariants(chain)


def step_states(job: str) -> dict[str, str]:
    """The state of the job and of each of its steps, as sacct records them."""
    out = slurm.run(["sacct", "-n", "-P", "-j", job, "-o", "JobID,State"]).stdout
    return dict(line.split("|", 1) for line in out.splitlines())


def test_without_growth_running_out_of_memory_ends_the_chain_with_a_hint(
    cluster: Cluster, tmp_path: Path
) -> None:
    script = f"""#!/bin/bash
#SBATCH -p multi -o out.txt --mem=100M
{sys.executable} -c 'x = bytearray(300 * 2**20)'
"""
    chain = submit_chain(cluster, tmp_path, script)
    assert chain.wait_end(timeout=120) == "FAILED"
    (end,) = chain.events("chain_ended")
    assert "it ran out of memory (ask for more memory with --mem" in end["reason"]
    assert "--grow-mem-on-oom 2" in end["reason"]
    assert_invariants(chain)


def test_links_without_progress_end_the_chain(cluster: Cluster, tmp_path: Path) -> None:
    # Link 1 reports progress (longrun.job.report_progress); links 2 and 3 make none.
    script = """#!/bin/bash
#SBATCH -p multi -o out.txt
if [ "$SLURM_LONGRUN_LINK" -eq 1 ]; then
  "$1" -c 'from longrun import job; job.report_progress("step 1200")'
fi
exit "$SLURM_LONGRUN_CONTINUE_CODE"
"""
    chain = submit_chain(
        cluster, tmp_path, script,
        wrapper=("--progress-file", "ckpt/step", "--max-idle-links", "2"),
        script_args=(sys.executable,),
    )  # fmt: skip
    (tmp_path / "ckpt").mkdir()
    assert chain.wait_end(timeout=120) == "NO_PROGRESS"
    assert len(chain.body_runs()) == 3
    (end,) = chain.events("chain_ended")
    assert "no progress in 2 links" in end["reason"]
    assert (tmp_path / "ckpt" / "step").read_text() == "step 1200\n"
    progress = [link["progress"] for link in status_json(chain)["links"]]
    assert [(p["value"], p["idle"]) for p in progress] == [
        ("step 1200", 0), ("step 1200", 1), ("step 1200", 2),
    ]  # fmt: skip
    text = run_cli(
        "longrun", "status", "--state-dir", str(chain.state_dir), chain.chain_id, cwd=tmp_path
    ).stdout
    assert re.search(r"step 1200 at 20\d\d-\d\d-\d\d \d\d:\d\d:\d\d \(idle 2\)", text), text
    assert_invariants(chain)


def test_the_time_budget_cuts_the_last_link_and_ends_the_chain(
    cluster: Cluster, tmp_path: Path
) -> None:
    # 2 minutes in all: link 1 works 5 s and asks for a new link; link 2 (--time=2) gets what
    # is left, cut to 1 minute (Slurm's unit), and Slurm ends it there.
    script = """#!/bin/bash
#SBATCH -p multi -o out.txt --time=2 --signal=B:USR1@10
echo "link $SLURM_LONGRUN_LINK deadline $SLURM_LONGRUN_DEADLINE" \
  "$("$1" -c 'from longrun import job; print(round(job.time_left()))')"
if [ "$SLURM_LONGRUN_LINK" -eq 1 ]; then sleep 5; exit "$SLURM_LONGRUN_CONTINUE_CODE"; fi
while :; do sleep 1; done
"""
    chain = submit_chain(
        cluster, tmp_path, script, wrapper=("--total-time", "2m"), script_args=(sys.executable,)
    )
    assert chain.wait_end(timeout=240) == "TIME_BUDGET"
    first, second = chain.links()
    (cut,) = chain.events("time_cut")
    assert (cut["job"], cut["limit"]) == (second, "1")
    records = {job: sacct_records(job)[-1] for job in (first, second)}
    assert records[second].state == "TIMEOUT"
    assert timelimit(second) == "00:01:00"
    (end,) = chain.events("chain_ended")
    assert end["job"] == second and "the time budget is used" in end["reason"]
    # Each link knew when Slurm would end it (link 2: after the cut), in bash and in Python.
    lines = [line.split() for line in (tmp_path / "out.txt").read_text().splitlines()
             if line.startswith("link ")]  # fmt: skip
    for (_, _, _, deadline, left), job, limit in zip(lines, (first, second), (120, 60)):
        start = slurm_epoch_of(records[job].start)
        assert abs(int(deadline) - (start + limit)) <= 2, (job, deadline, start)
        assert limit - 5 <= int(left) <= limit, (job, left)
    assert_invariants(chain)


def timelimit(job: str) -> str:
    return slurm.run(["sacct", "-n", "-X", "-P", "-j", job, "-o", "Timelimit"]).stdout.strip()


@pytest.mark.disruptive  # the second node must be free for the reservation's 100 s
def test_links_shortened_by_backfill_for_time_min_still_continue(
    cluster: Cluster, tmp_path: Path
) -> None:
    # A reservation of the second node in 100 s: the scheduler starts link 1 with a time limit
    # cut to what fits before it (--time-min=1). Once link 1 runs, the reservation goes.
    name = f"longrun-test-{tmp_path.name}"[:60]
    slurm.run([
        "scontrol", "create", "reservation", f"ReservationName={name}", "StartTime=now+100",
        "Duration=10", f"Nodes={cluster.node_b}", "Users=root", "Flags=MAINT,IGNORE_JOBS",
    ])  # fmt: skip
    try:
        script = """#!/bin/bash
#SBATCH -o out.txt --time=10 --time-min=1 --signal=B:USR1@15
echo "link $SLURM_LONGRUN_LINK"
[ "$SLURM_LONGRUN_LINK" -ge 2 ] && exit 0
while :; do sleep 1; done
"""
        chain = submit_chain(cluster, tmp_path, script, "-p", "multi", "-w", cluster.node_b)
        first = chain.wait_link_running(0, timeout=120)
    finally:
        slurm.run(["scontrol", "delete", f"ReservationName={name}"])
    assert chain.wait_end(timeout=240) == "COMPLETED"
    limit = timelimit(first)
    assert limit < "00:10:00", limit  # HH:MM:SS: shortened by the scheduler
    assert sacct_records(first)[-1].state == "TIMEOUT"
    assert [e["job"] for e in chain.events("pretimeout_signal")][:1] == [first]
    assert len(chain.body_runs()) == 2
    assert_invariants(chain)
