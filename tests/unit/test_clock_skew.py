"""Links in the order the protocol says, whatever the hosts' clocks say (issue 19, item 11).

Each link writes its own event file on the compute node where it runs; readers merge the files
by each host's clock. Here the real job side runs the links, and each link's events are then
stamped as its host's clock would have: one link ran on a host whose clock is behind, by a
second or by more than a link lasts. The order of the links, the last link, `longrun verify` and the
repair go by the links' own facts (restart count, the job each continues), never by the clocks
and never by the size of the job ids (99999 -> 100000, and Slurm's MaxJobId wrap-around).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from jobside import JobSide
from test_keeper import Cluster, use
from test_successor_twins import TIMED_OUT

from longrun import chain_actions, protocol, states
from longrun.chain_store import StateDir
from longrun.chain_view import build_view, link_order
from longrun.protocol import Event
from longrun.slurm_output import AccountingRow, slurm_epoch
from longrun.verify import check_links

T0 = 1_796_000_000.0  # when link 1 starts, by its host's clock (which is right)

# name -> (seconds between a link's events, how far the one host's clock is behind)
SKEWS = {
    "1 s at the hand-over": (0.25, 1.0),  # link 2 judges link 1 before link 1's verdict
    "1 s after a short link": (0.01, 1.0),  # link 2 starts before link 1 started
    "longer than a link": (60.0, 7200.0),  # every event of link 2 before every one of link 1
}
REORDERED = ["1 s after a short link", "longer than a link"]  # link 2's start before link 1's
SLURM_END = "2026-11-30T11:00:00"  # each link's EndTime, as scontrol shows it (jobside.RECORD)
# Job ids of three links: in a row, across 99999 -> 100000, and past MaxJobId (Slurm's default
# 67043328) back to FirstJobId: a later link with a smaller id.
JOB_IDS = {
    "in a row": ("1000", "1001", "1002"),
    "across 100000": ("99999", "100000", "100001"),
    "past MaxJobId": ("67043327", "1", "2"),
}


def stamp(side: JobSide, job: str, begin: float, step: float, first: int = 0) -> int:
    """Stamp link `job`'s events from line `first` on as its host's clock would have: the
    first at `begin`, one every `step` seconds. Returns how many it stamped."""
    path = side.chain.link_dir(job) / protocol.EVENTS
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for number, event in enumerate(lines[first:]):
        when = begin + number * step
        stamped = {"t": round(when, 6), "epoch": int(when)}
        event.update(time=time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(when)), **stamped)
    path.write_text("".join(json.dumps(event) + "\n" for event in lines))
    return len(lines) - first


def skewed_chain(
    tmp_path: Path, jobs: Sequence[str], skew: str, last_exit: int = 0, behind_link: int = 2
) -> JobSide:
    """The links `jobs` ran one after the other on the real job side, each queuing the next
    (the last one's body exits `last_exit`: 0 ends the chain; the continue code leaves it
    stalled, its sbatch failing); link `behind_link` ran on the host whose clock is behind."""
    step, behind = SKEWS[skew]
    side = JobSide(tmp_path)
    began = T0  # when each link starts, by a right clock
    for count, job in enumerate(jobs):
        last = count == len(jobs) - 1
        side.body_exits(last_exit if last else protocol.CONTINUE_EXIT_CODE)
        if last and last_exit == protocol.CONTINUE_EXIT_CODE:
            side.on_call("sbatch", f'echo "{TIMED_OUT}" >&2; exit 1')
        elif not last:
            (side.bin / "next-id").write_text(f"{jobs[count + 1]}\n")
        previous = jobs[count - 1] if count else ""
        ran = side.run(job, count, previous)
        assert ran.returncode in (0, last_exit), ran.stderr
        written = stamp(side, job, began - (behind if count + 1 == behind_link else 0.0), step)
        began += written * step
        side.slurm_shows(job, states.COMPLETED)
    side.write_record()
    return side


def accounting(jobs: Sequence[str]) -> dict[str, AccountingRow]:
    """sacct's rows for the links: one hour each, one after the other (slurmctld's one clock)."""
    rows = {}
    for count, job in enumerate(jobs):
        start, end = (time.localtime(T0 + 3600 * (count + part)) for part in (0, 1))
        rows[job] = AccountingRow(
            job, states.COMPLETED, "0:0", time.strftime("%Y-%m-%dT%H:%M:%S", start),
            time.strftime("%Y-%m-%dT%H:%M:%S", end), "01:00:00", "None",
        )  # fmt: skip
    return rows


@pytest.mark.parametrize("ids", JOB_IDS.values(), ids=JOB_IDS.keys())
@pytest.mark.parametrize("skew", SKEWS)
def test_links_are_in_the_order_of_their_restart_counts_whatever_the_clocks(
    tmp_path: Path, skew: str, ids: tuple[str, ...]
) -> None:
    side = skewed_chain(tmp_path, ids, skew)
    view = build_view(side.chain.read_meta(), side.chain.read_events(), side.chain.ended())
    assert [(link.number, link.job_id) for link in view.links] == list(enumerate(ids, 1))
    assert view.state == states.CHAIN_COMPLETED
    # Each earlier link as its successor judged it (Slurm's word), not as the clocks merged it.
    assert [link.state for link in view.links] == [states.COMPLETED] * 3
    assert [link.end_epoch for link in view.links[:2]] == [slurm_epoch(SLURM_END)] * 2
    assert view.current_job == ids[2]


@pytest.mark.parametrize("ids", JOB_IDS.values(), ids=JOB_IDS.keys())
@pytest.mark.parametrize("skew", REORDERED)
def test_verify_passes_a_correct_chain_whose_hosts_clocks_differ(
    tmp_path: Path, skew: str, ids: tuple[str, ...]
) -> None:
    side = skewed_chain(tmp_path, ids, skew)
    report = check_links("c", side.chain.read_events(), side.chain.ended(), accounting(ids), {})
    assert report.problems == []
    assert report.links == 3


@pytest.mark.parametrize("ids", JOB_IDS.values(), ids=JOB_IDS.keys())
@pytest.mark.parametrize("skew", REORDERED)
def test_the_repair_continues_the_last_link_not_the_one_with_the_latest_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, skew: str, ids: tuple[str, ...]
) -> None:
    # Link 2 asked for a new allocation, but every sbatch failed: the chain stalls after it.
    first, last = ids[:2]
    side = skewed_chain(tmp_path, (first, last), skew, last_exit=protocol.CONTINUE_EXIT_CODE)
    view = build_view(side.chain.read_meta(), side.chain.read_events(), None)
    assert view.links[-1].job_id == last
    assert chain_actions.needs_repair(view, {}, retries_left=False)
    cluster = use(monkeypatch, Cluster({}))
    assert chain_actions.repair(side.chain, StateDir(side.chain.path.parent.parent)) == "900"
    (repaired,) = [e for e in side.chain.read_events() if e.kind == protocol.REPAIRED]
    assert (repaired.job, repaired.number("restart_count")) == (last, 1)
    (sent,) = cluster.submitted
    assert "--restart-count=2" in sent["args"] and f"--previous-job={last}" in sent["args"]


def grew(side: JobSide, job: str, mb: str) -> None:
    """Link `job` judged its predecessor out of memory and grew --mem to `mb` (its event, as
    lr_grow_memory writes it, right after its judging and stamped like it)."""
    path = side.chain.link_dir(job) / protocol.EVENTS
    lines = path.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if '"judged"' in line)
    judged = json.loads(lines[at])
    event = {key: judged[key] for key in ("time", "epoch", "t", "job", "restart_count")}
    event.update(event=protocol.MEMORY_GROWN, option="mem", before="1000", after=mb)
    lines.insert(at + 1, json.dumps({**event, "maximum": "0"}) + "\n")
    path.write_text("".join(lines))


@pytest.mark.parametrize("skew", REORDERED)
def test_the_repair_asks_for_the_memory_the_last_link_grew_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, skew: str
) -> None:
    # Links 2 and 3 each grew the memory; link 3 (stalled) ran on the host whose clock is behind.
    jobs = ("1000", "1001", "1002")
    side = skewed_chain(tmp_path, jobs, skew, protocol.CONTINUE_EXIT_CODE, behind_link=3)
    grew(side, "1001", "2000")
    grew(side, "1002", "4000")  # stamped before link 2's growth
    (side.chain.link_dir("1002") / protocol.COMMAND).unlink()  # killed before it built one
    cluster = use(monkeypatch, Cluster({}))
    assert chain_actions.repair(side.chain, StateDir(side.chain.path.parent.parent)) == "900"
    (sent,) = cluster.submitted
    assert "--mem=4000M" in sent["args"] and "--memory=mem=4000" in sent["args"]


def test_a_link_requeued_onto_a_host_whose_clock_is_behind_runs_again(tmp_path: Path) -> None:
    # Link 2 stalled; Slurm requeued it (the same job id) onto a host whose clock is a few
    # seconds behind, where it runs its script again. In its own file the second run follows the
    # first, though its stamps are earlier: one writer at a time, the file's order is true.
    side = skewed_chain(
        tmp_path, ("1000", "1001"), "1 s at the hand-over",
        last_exit=protocol.CONTINUE_EXIT_CODE,
    )  # fmt: skip
    events = side.chain.link_dir("1001") / protocol.EVENTS
    written = len(events.read_text().splitlines())
    side.run("1001", 1, "1000", slurm_restarts=1)
    lines = events.read_text().splitlines(keepends=True)
    running = next(i for i in range(written, len(lines)) if '"body_started"' in lines[i])
    events.write_text("".join(lines[: running + 1]))  # (it runs its script now)
    stamp(side, "1001", T0 + 1.0, 0.25, first=written)  # before its first run's verdict
    view = build_view(side.chain.read_meta(), side.chain.read_events(), None)
    assert [link.job_id for link in view.links] == ["1000", "1001"]
    assert (view.links[-1].slurm_restarts, view.links[-1].state) == (1, states.RUNNING)


def started(job: str, restart_count: int | None, previous: str = "", t: float = 0.0) -> Event:
    event = Event(event=protocol.LINK_STARTED, job=job, previous=previous, t=t)
    if restart_count is not None:
        event["restart_count"] = restart_count
    return event


def test_without_restart_counts_the_job_each_link_continues_decides() -> None:
    # Events of a writer that gave no restart count, stamped in the wrong order; a job that
    # lost the claim is no link at all.
    events = [
        started("3", None, "2", t=1),
        started("2", None, "1", t=2),
        started("9", None, "2", t=3),
        Event(event=protocol.CLAIM_LOST, job="9", previous="2", t=4),
        started("1", None, "", t=5),
    ]
    assert link_order(events) == ["1", "2", "3"]


def test_where_no_fact_tells_the_order_of_the_events_decides() -> None:
    # Two first links (a damaged log): they stay as the reader listed them.
    assert link_order([started("5", 0, t=2), started("4", 0, t=1)]) == ["5", "4"]
