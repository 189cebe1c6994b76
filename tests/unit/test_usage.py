"""`longrun usage`: sacct's output read by its header (captured from the local cluster), and a
chain's cost computed from those rows and its events: per link, in total, per array element,
longrun's overhead and the work at risk; and the picture."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest
from chainfiles import ended_chain
from click.testing import CliRunner

from longrun import protocol, states
from longrun.array_view import ArrayView
from longrun.chain_view import ChainView, LinkView
from longrun.cli import main
from longrun.slurm_output import (
    USAGE_FIELDS,
    UsageRow,
    cpu_seconds,
    gpu_count,
    memory_bytes,
    parse_usage,
    slurm_epoch,
)
from longrun.usage import BodyTimes, body_times, jobs_of, usage_from
from longrun.usage_report import usage_svg, usage_text
from slurmguard import guarded_path, stand_ins

DATA = Path(__file__).parent / "data"
CAPTURED = (DATA / "sacct-usage-22.05.txt").read_text()


def rows_of(*jobs: str) -> list[UsageRow]:
    return [row for row in parse_usage(CAPTURED) if row.job in jobs or row.job_raw in jobs]


def test_the_captured_header_is_the_format_longrun_asks_for() -> None:
    assert CAPTURED.splitlines()[0].split("|") == list(USAGE_FIELDS)


def test_a_job_with_two_steps_has_the_peak_memory_of_its_steps_and_its_gpu() -> None:
    (row,) = rows_of("3087")
    assert (row.state, row.elapsed, row.cpus, row.gpus, row.nodes) == ("COMPLETED", 7, 2, 1, "vm")
    assert row.cpu_used == pytest.approx(7.296)  # the job's TotalCPU: its two steps together
    assert row.max_rss == 170164 * 1024  # the batch step's, larger than the srun step's
    assert (row.start, row.end) == (
        slurm_epoch("2026-11-30T17:14:48"), slurm_epoch("2026-11-30T17:14:55"),
    )  # fmt: skip


def test_slurm_24_11_writes_the_same_records() -> None:
    (row,) = parse_usage((DATA / "sacct-usage-24.11.txt").read_text())
    assert (row.job, row.state, row.elapsed, row.cpus, row.gpus, row.nodes) == (
        "2933", "COMPLETED", 4, 2, 1, "vm-v24",
    )  # fmt: skip
    assert row.cpu_used == pytest.approx(3.048)
    assert row.max_rss == 102332 * 1024


def test_a_requeued_job_has_one_row_per_run_and_an_array_task_its_own_id() -> None:
    runs = rows_of("3093")
    assert [(r.state, r.elapsed) for r in runs] == [("REQUEUED", 3), ("COMPLETED", 5)]
    assert [r.max_rss for r in runs] == [66040 * 1024, 66040 * 1024]
    tasks = {r.job: r.job_raw for r in parse_usage(CAPTURED) if r.job.startswith("3094_")}
    assert tasks == {"3094_1": "3095", "3094_2": "3094"}
    (cancelled,) = rows_of("3092")
    assert (cancelled.state, cancelled.elapsed, cancelled.max_rss) == ("CANCELLED", 0, None)


def test_the_columns_are_read_by_name_not_by_position() -> None:
    lines = CAPTURED.splitlines()
    names = lines[0].split("|")
    order = list(reversed(range(len(names))))
    shuffled = ["|".join(line.split("|")[i] for i in order) for line in lines]
    assert parse_usage("\n".join(shuffled)) == parse_usage(CAPTURED)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("00:07.296", 7.296), ("01:02", 62.0), ("1:02:03", 3723.0), ("2-01:00:00", 176400.0),
     ("", 0.0), ("INVALID", 0.0)],
)  # fmt: skip
def test_cpu_time_in_every_form_sacct_writes(text: str, seconds: float) -> None:
    assert cpu_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "size"),
    [("170084K", 170084 * 1024), ("1.5G", 1536 * 2**20), ("0", 0), ("12", 12), ("", None),
     ("n/a", None)],
)  # fmt: skip
def test_memory_in_every_unit(text: str, size: int | None) -> None:
    assert memory_bytes(text) == size


@pytest.mark.parametrize(
    ("tres", "gpus"),
    [("billing=2,cpu=2,gres/gpu=1,node=1", 1), ("cpu=4,gres/gpu:a100=2,gres/gpu=2", 2),
     ("cpu=4,gres/gpu:a100=1,gres/gpu:v100=2", 3), ("cpu=2,mem=0,node=1", 0), ("", 0)],
)  # fmt: skip
def test_gpus_from_the_allocation(tres: str, gpus: int) -> None:
    assert gpu_count(tres) == gpus


# --- a chain's usage ------------------------------------------------------------------------
def link(number: int, job: str, state: str, verdict: str | None = None) -> LinkView:
    return LinkView(number=number, restart_count=number - 1, job_id=job, state=state,
                    verdict=verdict)  # fmt: skip


def view(*links: LinkView) -> ChainView:
    return ChainView("c1", "job.sh", states.CHAIN_COMPLETED, "", 9, list(links),
                     created="2026-11-30T17:19:56")  # fmt: skip


def event(kind: str, job: str, t: float, **fields: Any) -> dict[str, Any]:
    return {"event": kind, "job": job, "t": t, "epoch": int(t), **fields}


def chain_of_captured_links() -> tuple[ChainView, list[dict[str, Any]]]:
    """The three links of the captured chain, link 2 now a time limit (its job ended before its
    body), with the bodies' times as a chain's events would hold them."""
    start = {job: slurm_epoch(s) for job, s in
             (("3089", "2026-11-30T17:19:57"), ("3090", "2026-11-30T17:20:03"),
              ("3091", "2026-11-30T17:20:09"))}  # fmt: skip
    events = []
    for job, at in start.items():
        assert at is not None
        events.append(event(protocol.BODY_STARTED, job, at + 0.6))
        if job != "3090":  # link 2 was killed: its body never exited
            events.append(event(protocol.BODY_EXITED, job, at + 3.4))
    return view(
        link(1, "3089", states.COMPLETED, states.VERDICT_CONTINUE),
        link(2, "3090", states.TIMEOUT),
        link(3, "3091", states.COMPLETED, states.VERDICT_COMPLETED),
    ), events  # fmt: skip


def test_the_chain_totals_are_the_sums_of_its_links() -> None:
    chain, events = chain_of_captured_links()
    usage = usage_from(chain, parse_usage(CAPTURED), events)
    assert [u.job_id for u in usage.links] == ["3089", "3090", "3091"]
    total = usage.total
    assert (total.links, total.recorded, total.elapsed) == (3, 3, 12)
    assert total.cpu_allocated == 2 * 4 * 3
    assert total.cpu_used == pytest.approx(3.322 + 3.360 + 3.387)
    assert total.gpu_seconds == 12
    assert total.queued == 1 + 0 + 0  # eligible -> start, per link
    assert total.max_rss == 123108 * 1024
    # Before each body: 0.6 s rounds to 1 s; after: 4 - 3.4 rounds to 1; the killed link's
    # body ran to the job's end.
    assert [u.overhead for u in usage.links] == [(1, 1), (1, 0), (1, 1)]
    assert (total.overhead, total.overhead_before, total.without_body) == (5, 3, 0)
    assert total.at_risk is None  # no --progress-file: not tracked


def test_a_link_that_ran_no_body_is_all_overhead() -> None:
    chain = view(link(1, "3089", states.COMPLETED, states.VERDICT_CONTINUE),
                 link(2, "3090", states.COMPLETED, states.VERDICT_ENDED))  # fmt: skip
    events = [event(protocol.BODY_STARTED, "3089", 1796059197.0)]
    usage = usage_from(chain, parse_usage(CAPTURED), events)
    assert usage.links[1].overhead == (4, 0) and not usage.links[1].ran_body
    assert (usage.total.without_body, usage.total.without_body_seconds) == (1, 4)
    assert "1 link(s) ran no script (00:00:04)" in usage_text(usage)


def test_a_requeued_link_counts_every_run() -> None:
    usage = usage_from(view(link(1, "3093", states.COMPLETED)), parse_usage(CAPTURED), [])
    (only,) = usage.links
    assert (len(only.runs), only.elapsed, only.cpu_allocated) == (2, 8, 8)
    assert only.queued == 0 + 6  # the second run waited from 17:21:24 to 17:21:30


def test_a_job_missing_from_the_accounting_is_named_not_counted() -> None:
    usage = usage_from(view(link(1, "3089", states.COMPLETED), link(2, "999", states.RUNNING)),
                       parse_usage(CAPTURED), [])  # fmt: skip
    assert (usage.total.links, usage.total.recorded, usage.total.elapsed) == (2, 1, 4)
    assert "Not in Slurm's accounting (yet): job 999" in usage_text(usage)


def test_the_work_at_risk_runs_from_the_last_progress_to_the_interruption() -> None:
    chain, events = chain_of_captured_links()
    killed_end = slurm_epoch("2026-11-30T17:20:07")
    assert killed_end is not None
    events += [
        # Link 1 saw the file at its end; link 2 was killed, so link 3 saw it for link 2.
        event(protocol.PROGRESS, "3089", 1796059201.0, at="end", previous="", mtime="1796059200"),
        event(protocol.PROGRESS, "3091", 1796059209.5, at="start", previous="3090",
              mtime=str(killed_end - 3)),
        event(protocol.PROGRESS, "3091", 1796059213.0, at="end", previous="3090",
              mtime="1796059212"),
    ]  # fmt: skip
    usage = usage_from(chain, parse_usage(CAPTURED), events)
    assert [u.at_risk for u in usage.links] == [0, 3, 0]
    assert usage.total.at_risk == 3
    assert "Work at risk: 00:00:03" in usage_text(usage)


def test_no_progress_in_an_interrupted_link_puts_its_whole_run_at_risk() -> None:
    chain, events = chain_of_captured_links()
    look = event(protocol.PROGRESS, "3091", 1796059209.5, at="start", previous="3090", mtime="")
    events.append(look)
    usage = usage_from(chain, parse_usage(CAPTURED), events)
    body_start = body_times(events)["3090"].start
    assert body_start is not None
    end = usage.links[1].end
    assert end is not None
    assert usage.links[1].at_risk == round(end - body_start)


def test_an_array_has_totals_per_element_and_for_the_whole_array() -> None:
    elements = {
        1: ChainView("a_1", "job.sh", states.CHAIN_COMPLETED, "", 9,
                     [link(1, "3095", states.COMPLETED)]),
        2: ChainView("a_2", "job.sh", states.CHAIN_COMPLETED, "", 9,
                     [link(1, "3094", states.COMPLETED)]),
    }  # fmt: skip
    array = ArrayView("a", "job.sh", "3094", states.CHAIN_COMPLETED, "", elements)
    assert jobs_of(array) == ["3095", "3094"]
    usage = usage_from(array, parse_usage(CAPTURED), [])
    assert [(u.element, u.job_id, u.elapsed) for u in usage.links] == [
        (1, "3095", 2), (2, "3094", 2),
    ]  # fmt: skip
    assert {i: t.elapsed for i, t in usage.elements().items()} == {1: 2, 2: 2}
    assert usage.total.elapsed == 4
    data = usage.to_json()
    assert data["elements"]["1"]["elapsed_seconds"] == 2
    assert "Per element:" in usage_text(usage)


def test_body_times_of_a_link_that_started_twice_keep_the_first_start() -> None:
    events = [event(protocol.BODY_STARTED, "7", 10.0), event(protocol.BODY_STARTED, "7", 50.0),
              event(protocol.BODY_EXITED, "7", 60.0)]  # fmt: skip
    assert body_times(events)["7"] == BodyTimes(10.0, 60.0, None)


def test_the_picture_is_valid_svg_with_a_bar_per_link() -> None:
    chain, events = chain_of_captured_links()
    usage = usage_from(chain, parse_usage(CAPTURED), events)
    svg = usage_svg(usage)
    root = ElementTree.fromstring(svg)
    titles = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert sum(title.startswith("link ") for title in titles) == 3
    assert any("TIMEOUT" in title for title in titles)
    assert usage_svg(usage) == svg  # deterministic


def test_a_job_name_cannot_break_the_picture() -> None:
    hostile = ChainView("c1", "</text><script>x</script>&", states.CHAIN_RUNNING, "", 9, [])
    root = ElementTree.fromstring(usage_svg(usage_from(hostile, [], [])))
    assert not list(root.iter("{http://www.w3.org/2000/svg}script"))


# --- the command ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sacct", "message"),
    [
        ('echo "sacct: error: Problem talking to the database: accounting storage is disabled" >&2'
         "; exit 1", "this cluster keeps no accounting"),
        ('echo "sacct: error: Socket timed out on send/recv operation" >&2; exit 1',
         "Socket timed out"),
    ],
)  # fmt: skip
def test_usage_without_an_answer_from_the_accounting_says_why(
    tmp_path: Path, sacct: str, message: str
) -> None:
    folder, state = ended_chain(tmp_path)
    bin_dir = stand_ins(tmp_path / "bin", sacct=sacct)
    env = {"PATH": f"{bin_dir}:{guarded_path()}"}
    result = CliRunner().invoke(main, ["usage", "--state-dir", str(state.root), folder.chain_id],
                                env=env)  # fmt: skip
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_jobs_of_other_chains_in_the_answer_are_not_counted(tmp_path: Path) -> None:
    """The captured answer holds other jobs than this recorded chain's: none is counted."""
    folder, state = ended_chain(tmp_path)
    bin_dir = stand_ins(tmp_path / "bin", sacct=f"cat {DATA / 'sacct-usage-22.05.txt'}")
    env = {"PATH": f"{bin_dir}:{guarded_path()}"}
    result = CliRunner().invoke(
        main, ["usage", "--state-dir", str(state.root), folder.chain_id, "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["chain_id"] == folder.chain_id
    assert data["total"]["links"] == len(data["links"]) > 0
    assert data["total"]["recorded_links"] == 0 and data["total"]["elapsed_seconds"] == 0


def test_the_list_counts_only_runs_submitted_after_the_chain(tmp_path: Path) -> None:
    """One sacct call for the whole list starts at the oldest chain's submit time, so a job id
    Slurm used before a newer chain was submitted comes back too: that run is not counted."""
    _folder, state = ended_chain(tmp_path)  # links 137 and 143, submitted 2026-11-25T21:28:28
    header = "|".join(USAGE_FIELDS)
    rows = [
        # job 137 long before the chain (a reused id), then the chain's own runs
        "137|137|COMPLETED|2026-11-20T08:00:00|2026-11-20T08:00:00|2026-11-20T08:00:00|"
        "2026-11-20T09:00:00|3600|8|00:00:00|cpu=8|1000K|vm",
        "137|137|TIMEOUT|2026-11-25T21:28:28|2026-11-25T21:28:28|2026-11-25T21:28:29|"
        "2026-11-25T21:29:29|60|1|00:00:00|cpu=1|1000K|vm",
        "143|143|COMPLETED|2026-11-25T21:28:40|2026-11-25T21:29:30|2026-11-25T21:29:30|"
        "2026-11-25T21:29:40|10|1|00:00:00|cpu=1|1000K|vm",
    ]
    answer = tmp_path / "answer"
    answer.write_text("\n".join([header, *rows]) + "\n")
    bin_dir = stand_ins(tmp_path / "bin", sacct=f"cat {answer}")
    env = {"PATH": f"{bin_dir}:{guarded_path()}"}
    result = CliRunner().invoke(
        main, ["list", "--state-dir", str(state.root), "--usage", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["usage"]["elapsed_seconds"] == 70
    assert row["usage"]["cpu_allocated_seconds"] == 70
    text = CliRunner().invoke(main, ["list", "--state-dir", str(state.root), "--usage"], env=env)
    assert "ELAPSED" in text.output and "00:01:10" in text.output
