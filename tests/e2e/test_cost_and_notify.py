"""What a chain cost (`longrun usage`, `longrun list --usage`), who is told when it ends
(--notify, --notify-url) and the identity every link has, on the local cluster: the totals
against sacct's own records for the same jobs, the notifiers' events in order, a notifier that
hangs, a chain that cannot queue a successor."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from webhook import Webhook, webhook

from chaintest import TWO_LINKS, environment, run_cli, submit_chain
from faulttest import Faults
from longrun import slurm
from slurmtest import Cluster, wait_for

pytestmark = pytest.mark.slurm

# Each link: says who it is (shell and Python helper), works 2 s holding 60 MB, records progress,
# works 3 s more. Link 1 then waits to be preempted; link 2 asks for a new link; link 3 ends.
WORK = """#!/bin/bash
#SBATCH -o out.txt -c 2 --gpus=1
echo "identity $SLURM_LONGRUN_CHAIN_ID $SLURM_LONGRUN_LINK" \
  "$("$1" -c 'from longrun import job; print(job.chain_id(), job.link_number())')"
"$1" -c 'import time; x = bytearray(60 * 2**20); t = time.time()
while time.time() - t < 2: pass'
date +%s >progress
sleep 3
case $SLURM_LONGRUN_LINK in
  1) echo "waiting $SLURM_JOB_ID"; while :; do sleep 1; done ;;
  2) exit "$SLURM_LONGRUN_CONTINUE_CODE" ;;
esac
echo done
"""


def sacct_totals(jobs: list[str]) -> dict[str, float]:
    """The sums over every run of these jobs, read from sacct here, apart from longrun: time
    and allocation from the jobs' records, CPU time used from their steps'."""
    out = slurm.run(
        ["sacct", "-D", "-n", "-P", "-j", ",".join(jobs),
         "-o", "JobIDRaw,ElapsedRaw,AllocCPUS,TotalCPU,AllocTRES"],
    ).stdout  # fmt: skip
    totals = {"elapsed": 0.0, "cpu_allocated": 0.0, "cpu_used": 0.0, "gpu_seconds": 0.0}
    for line in out.splitlines():
        job, elapsed, cpus, used, tres = line.split("|")
        assert job.split(".")[0] in jobs
        if "." in job:  # a step: the CPU time its processes used
            minutes, _, seconds = used.rpartition(":")
            totals["cpu_used"] += int(minutes.split(":")[-1] or 0) * 60 + float(seconds)
            continue
        gpus = sum(int(v) for k, v in (i.split("=") for i in tres.split(",")) if k == "gres/gpu")
        totals["elapsed"] += int(elapsed)
        totals["cpu_allocated"] += int(cpus) * int(elapsed)
        totals["gpu_seconds"] += gpus * int(elapsed)
    return totals


def usage_json(workdir: Path, *args: str) -> Any:
    result = run_cli("longrun", "usage", "--state-dir", "state", "--json", *args, cwd=workdir)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.disruptive  # the preemptor takes the whole node
def test_usage_counts_every_link_as_sacct_does_with_the_work_at_risk(
    cluster: Cluster, tmp_path: Path
) -> None:
    chain = submit_chain(
        cluster, tmp_path, WORK, "-p", "main",
        wrapper=("--progress-file", "progress"), script_args=(sys.executable,),
    )  # fmt: skip
    first = chain.wait_link_running(0)
    cluster.wait_file(tmp_path / "out.txt", f"waiting {first}")
    cluster.preempt(first)
    assert chain.wait_end(timeout=240) == "COMPLETED"
    links = chain.links()
    assert len(links) == 3

    # Every link knows the chain and its number, from the shell and from the Python helper.
    identities = [line.split()[1:] for line in (tmp_path / "out.txt").read_text().splitlines()
                  if line.startswith("identity ")]  # fmt: skip
    assert identities == [[chain.chain_id, str(n), chain.chain_id, str(n)] for n in (1, 2, 3)]

    # sacct has every link once its records are written.
    usage = wait_for(
        lambda: (lambda u: u if u["total"]["recorded_links"] == 3 else None)(
            usage_json(tmp_path, chain.chain_id)
        ),
        timeout=60, what="sacct to record the three links",
    )  # fmt: skip
    assert [link["job_id"] for link in usage["links"]] == links
    assert usage["links"][0]["kind"] == "preempted"
    total = usage["total"]
    expected = sacct_totals(links)
    assert total["elapsed_seconds"] == expected["elapsed"]
    assert total["cpu_allocated_seconds"] == expected["cpu_allocated"]
    assert total["cpu_used_seconds"] == pytest.approx(expected["cpu_used"], abs=0.01)
    assert total["gpu_seconds"] == expected["gpu_seconds"] > 0
    assert all(link["max_rss_bytes"] >= 60 * 2**20 for link in usage["links"])
    # Every link ran the script; longrun's part is what remains of each job's time.
    assert total["links_without_body"] == 0
    assert 0 <= total["overhead_seconds"] < total["elapsed_seconds"]
    # Link 1 worked at least 3 s after its last progress before it was preempted.
    at_risk = [link["at_risk_seconds"] for link in usage["links"]]
    assert at_risk[0] >= 3 and at_risk[1:] == [0, 0]

    # The same totals in the list, from one sacct call for all chains.
    listed = run_cli("longrun", "list", "--state-dir", "state", "--usage", "--json", cwd=tmp_path)
    (row,) = json.loads(listed.stdout)
    assert row["usage"] == total

    svg = tmp_path / "chain.svg"
    drawn = run_cli("longrun", "usage", "--state-dir", "state", "--svg", str(svg), cwd=tmp_path)
    assert drawn.returncode == 0, drawn.stderr
    assert "Overhead (longrun's part of the allocation)" in drawn.stdout
    root = ElementTree.fromstring(svg.read_text())
    titles = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert sum(title.startswith("link ") for title in titles) == 3


# --- notifications --------------------------------------------------------------------------
@pytest.fixture
def hook() -> Iterator[Webhook]:
    with webhook() as server:
        yield server


NOTIFIER = """#!/bin/bash
echo "$LONGRUN_EVENT $LONGRUN_LINK $LONGRUN_JOB_ID $LONGRUN_STATE" >>notified.txt
"""


def test_notifiers_hear_every_event_in_order(
    cluster: Cluster, tmp_path: Path, hook: Webhook
) -> None:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "notify.sh").write_text(NOTIFIER)
    (tmp_path / "notify.sh").chmod(0o755)
    chain = submit_chain(
        cluster, tmp_path, "#!/bin/bash\n#SBATCH -o out.txt\n" + TWO_LINKS,
        wrapper=("--notify", "./notify.sh", "--notify-url", f"{hook.url}/longrun",
                 "--notify-on", "all"),
    )  # fmt: skip
    assert chain.wait_end() == "COMPLETED"
    first, second = chain.links()
    expected = [
        ("link_started", "1", first), ("link_started", "2", second),
        ("link_interrupted", "2", second), ("chain_ended", "2", second),
    ]  # fmt: skip
    told = [
        tuple(line.split()[:3]) for line in (tmp_path / "notified.txt").read_text().splitlines()
    ]
    assert told == expected
    assert (tmp_path / "notified.txt").read_text().splitlines()[-1].endswith(" COMPLETED")
    posts = [post.json() for post in hook.posts]
    assert [(p["event"], str(p["restart_count"] + 1), p["job"]) for p in posts] == expected
    assert {p["chain"] for p in posts} == {chain.chain_id}
    assert chain.events("notify_failed") == []


def test_a_hanging_notifier_costs_the_chain_nothing(cluster: Cluster, tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "hang.sh").write_text("#!/bin/bash\ntrap '' TERM\nsleep 300\n")
    (tmp_path / "hang.sh").chmod(0o755)
    chain = submit_chain(
        cluster, tmp_path, "#!/bin/bash\n#SBATCH -o out.txt\n" + TWO_LINKS,
        wrapper=("--notify", "./hang.sh", "--notify-on", "all"),
        env=environment(LONGRUN_NOTIFY_SECONDS="2"),
    )  # fmt: skip
    assert chain.wait_end() == "COMPLETED"
    failed = chain.events("notify_failed")
    assert [e["notified"] for e in failed] == [
        "link_started", "link_started", "link_interrupted", "chain_ended",
    ]  # fmt: skip
    assert {e["error"] for e in failed} == {"no end in 2s"}
    processes = subprocess.run(
        ["ps", "-eo", "stat=,args="], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    running = [p for p in processes if "hang.sh" in p and not p.lstrip().startswith("Z")]
    assert running == [], "the notifier still runs"  # (a zombie has ended)


def test_a_chain_that_cannot_queue_a_successor_says_so_and_tells_the_notifier(
    cluster: Cluster, tmp_path: Path
) -> None:
    faults = Faults(tmp_path)
    faults.arm("sbatch", "pass 1", "fail 100")  # the first link's own sbatch, then none
    tmp_path.joinpath("notify.sh").write_text(NOTIFIER)
    tmp_path.joinpath("notify.sh").chmod(0o755)
    chain = submit_chain(
        cluster, tmp_path, "#!/bin/bash\n#SBATCH -o out.txt\n" + TWO_LINKS,
        wrapper=("--notify", "./notify.sh"),
        env=faults.env(LONGRUN_SUBMIT_RETRY_SECONDS="4"),
    )  # fmt: skip
    (stalled,) = chain.wait_event("chain_stalled", timeout=120)
    assert "Socket timed out" in stalled["reason"]
    cluster.wait_final(chain.first_job)
    told = [line.split()[0] for line in (tmp_path / "notified.txt").read_text().splitlines()]
    assert told == ["successor_failed", "chain_stalled"]
    status = run_cli("longrun", "status", "--state-dir", "state", chain.chain_id, cwd=tmp_path)
    assert "STALLED" in status.stdout
    assert "the chain stalls" in (tmp_path / "out.txt").read_text()


def test_an_array_chain_has_totals_per_element_and_for_the_whole_array(
    cluster: Cluster, tmp_path: Path
) -> None:
    chain = submit_chain(
        cluster, tmp_path, "#!/bin/bash\n#SBATCH -o out-%a.txt\n" + TWO_LINKS, "--array=1-2"
    )

    def ended() -> str | None:  # an array records each element's end
        status = run_cli("longrun", "status", "--state-dir", "state", chain.chain_id, "--json",
                         cwd=tmp_path)  # fmt: skip
        state = json.loads(status.stdout)["state"]
        return state if state not in ("RUNNING", "PENDING", "STALLED") else None

    assert wait_for(ended, timeout=300, interval=2, what="the array chain to end") == "COMPLETED"
    usage = wait_for(
        lambda: (lambda u: u if u["total"]["recorded_links"] == 4 else None)(
            usage_json(tmp_path, chain.chain_id)
        ),
        timeout=60, what="sacct to record the four links",
    )  # fmt: skip
    links = [link["job_id"] for link in usage["links"]]
    assert sorted(links) == sorted(chain.links())
    assert [link["element"] for link in usage["links"]] == [1, 1, 2, 2]
    elements = usage["elements"]
    assert {index: e["links"] for index, e in elements.items()} == {"1": 2, "2": 2}
    assert sum(e["elapsed_seconds"] for e in elements.values()) == usage["total"]["elapsed_seconds"]
    assert usage["total"]["elapsed_seconds"] == sacct_totals(links)["elapsed"]
    one = usage_json(tmp_path, chain.chain_id, "--element", "2")
    assert [link["job_id"] for link in one["links"]] == links[2:]
