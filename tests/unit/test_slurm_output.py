"""Parsers of Slurm's output, on output captured from the real local cluster (see data/).

data/capture.sh makes the jobs and captures the output; data/jobs.json names each job's role.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from longrun import slurm_output
from longrun.errors import LongrunError
from longrun.slurm_output import (
    parse_sacct,
    parse_sbatch_job_id,
    parse_slurm_version,
    parse_squeue,
    parse_tagged,
    slurm_epoch,
)

DATA = Path(__file__).parent / "data"
JOBS: dict[str, str] = json.loads((DATA / "jobs.json").read_text())


def captured(name: str) -> str:
    return (DATA / name).read_text()


def test_sbatch_job_id_in_each_form() -> None:
    plain = captured("sbatch_plain.txt")
    assert plain.startswith("Submitted batch job ")
    assert parse_sbatch_job_id(plain) == plain.split()[-1]
    with_cluster = captured("sbatch_parsable_cluster.txt")
    assert ";" in with_cluster
    assert parse_sbatch_job_id(with_cluster) == with_cluster.split(";")[0]
    assert parse_sbatch_job_id("52\n") == "52"


def test_sbatch_output_without_a_job_id_is_an_error() -> None:
    with pytest.raises(LongrunError, match="printed no job id"):
        parse_sbatch_job_id("sbatch: warning: something\n")


def test_squeue_rows_by_job_id() -> None:
    rows = parse_squeue(captured("squeue_queue_format.txt"))
    assert {job: row.state for job, row in rows.items()} == {
        JOBS["running"]: "RUNNING",
        JOBS["pending"]: "PENDING",
        JOBS["failed"]: "FAILED",
        JOBS["completed"]: "COMPLETED",
        JOBS["cancelled"]: "CANCELLED",
    }
    pending, running = rows[JOBS["pending"]], rows[JOBS["running"]]
    assert (pending.reason, pending.start, pending.end) == ("Dependency", "N/A", "N/A")
    assert rows[JOBS["failed"]].reason == "NonZeroExitCode"
    assert running.time_left == "UNLIMITED" and running.end == "NONE"
    assert slurm_epoch(running.start) is not None and slurm_epoch(running.end) is None


def test_squeue_of_preempted_jobs() -> None:
    rows = parse_squeue(captured("squeue_queue_format_preempted.txt"))
    step, graced = rows[JOBS["preempted_step"]], rows[JOBS["preempted_graced"]]
    assert (step.state, step.reason) == ("FAILED", "NonZeroExitCode")
    # Still running in its grace time; EndTime is when the grace time ends.
    assert graced.state == "RUNNING" and graced.time_left.startswith("1-02:0")
    assert slurm_epoch(graced.end) is not None


def test_squeue_of_jobs_past_their_limit_and_after_node_failure() -> None:
    rows = parse_squeue(captured("squeue_queue_format_ends.txt"))
    node_fail = rows[JOBS["node_fail"]]
    assert (node_fail.state, node_fail.reason) == ("NODE_FAIL", "NodeDown")
    assert rows[JOBS["timeout"]].time_left == "INVALID"


def test_squeue_ignores_blank_and_short_lines() -> None:
    assert parse_squeue("\n  \nnot|enough|\n") == {}


def test_sacct_rows_with_cancelled_by_uid() -> None:
    rows = parse_sacct(captured("sacct_accounting.txt"))
    assert {job: row.state for job, row in rows.items()} == {
        JOBS["running"]: "RUNNING",
        JOBS["pending"]: "PENDING",
        JOBS["failed"]: "FAILED",
        JOBS["completed"]: "COMPLETED",
        JOBS["cancelled"]: "CANCELLED",  # "CANCELLED by 0"
    }
    assert "CANCELLED by" in captured("sacct_accounting.txt")
    assert rows[JOBS["failed"]].exit_code == "3:0"
    assert rows[JOBS["pending"]].start == "Unknown" and slurm_epoch("Unknown") is None


def test_sacct_preempted_jobs() -> None:
    rows = parse_sacct(captured("sacct_accounting_preempted.txt"))
    step, graced = rows[JOBS["preempted_step"]], rows[JOBS["preempted_graced"]]
    # A step that exits on the preemption's SIGTERM makes Slurm record FAILED, not PREEMPTED.
    assert (step.state, step.exit_code) == ("FAILED", "15:0")
    assert graced.state == "PREEMPTED"


def test_sacct_time_limit_node_failure_and_cancelled_requeued_job() -> None:
    rows = parse_sacct(captured("sacct_accounting_ends.txt"))
    assert {job: row.state for job, row in rows.items()} == {
        JOBS["timeout"]: "TIMEOUT",
        JOBS["node_fail"]: "NODE_FAIL",
        JOBS["requeued"]: "CANCELLED",
    }


def test_sacct_keeps_the_last_record_of_a_requeued_job() -> None:
    # sacct -D lists every run of a requeued job under the same id; the last one is current.
    text = captured("sacct_accounting_requeue_duplicates.txt")
    lines = [line for line in text.splitlines() if line]
    assert len(lines) >= 2 and {line.split("|")[0] for line in lines} == {JOBS["requeued"]}
    assert lines[0].split("|")[1] == "NODE_FAIL"  # its first run ended with the node
    assert parse_sacct(text)[JOBS["requeued"]].state == "CANCELLED"


def test_slurm_timestamps_are_local_time() -> None:
    expected = int(time.mktime((2026, 11, 25, 21, 11, 12, 0, 0, -1)))
    assert slurm_epoch("2026-11-25T21:11:12") == expected
    for nothing in ("", None, "Unknown", "None", "NONE", "N/A", "2026-13-45T99:99:99"):
        assert slurm_epoch(nothing) is None


def test_sbatch_job_id_with_clusters() -> None:
    text = captured("sbatch_clusters.txt")
    assert text.startswith("Submitted batch job ") and " on cluster " in text
    assert parse_sbatch_job_id(text) == text.split()[3]


def test_squeue_with_clusters_and_preempt_time() -> None:
    (row,) = parse_squeue(captured("squeue_queue_format_clusters.txt")).values()
    assert (row.state, row.reason, row.preempt_time, row.preempted) == (
        "PENDING", "JobHeldUser", "N/A", False,
    )  # fmt: skip
    # The line -M prints before the rows when headers are on is not a row.
    assert parse_squeue("CLUSTER: longrun\n" + captured("squeue_queue_format_clusters.txt"))


def test_a_tagged_job_is_found_whatever_its_comment_holds() -> None:
    (row,) = parse_tagged(captured("squeue_tag_format.txt"))
    assert row.comment == "my | comment longrun:20261126-063000-abcd:1"
    assert row.tag_matches("longrun:20261126-063000-abcd:1")
    assert not row.tag_matches("longrun:20261126-063000-abcd:11")
    assert not replace(row, state="CANCELLED").tag_matches("longrun:20261126-063000-abcd:1")


def test_array_tasks_are_found_by_their_own_job_id_and_as_arrayjob_task() -> None:
    rows = parse_squeue((DATA / "squeue_queue_format_array.txt").read_text())
    assert rows["3043_5"].state == "PENDING" and rows["3043_5"].job_id == "3043"
    assert "3043" not in rows  # the pending task's id is the array's until it starts
    assert rows["3045"] is rows["3043_1"] and rows["3045"].state == "RUNNING"
    assert rows["3044"].task_key is None and "3044_" not in "".join(rows)
    ended = parse_squeue((DATA / "squeue_queue_format_array_ends.txt").read_text())
    assert ended["3043"] is ended["3043_5"] and ended["3043"].state == "COMPLETED"


def test_accounting_rows_of_array_tasks_are_keyed_by_their_own_job_id() -> None:
    rows = parse_sacct((DATA / "sacct_accounting_array.txt").read_text())
    assert sorted(rows) == ["3043", "3044", "3045", "3046"]
    assert rows["3043"].start == "2026-11-26T09:08:29"


def test_the_slurm_version_from_sbatch() -> None:
    assert parse_slurm_version((DATA / "sbatch_version.txt").read_text()) == "22.05.8"
    assert parse_slurm_version("slurm 23.11.4") == "23.11.4"
    assert parse_slurm_version("sbatch: command not found") is None


@pytest.mark.parametrize(
    ("columns", "row", "format_text"),
    [
        (slurm_output.QUEUE_COLUMNS, slurm_output.QueueRow, slurm_output.QUEUE_FORMAT),
        (
            slurm_output.ACCOUNTING_COLUMNS,
            slurm_output.AccountingRow,
            slurm_output.ACCOUNTING_FORMAT,
        ),
    ],
)
def test_each_format_names_every_field_of_its_row_in_order(
    columns: tuple[tuple[str, str], ...], row: type, format_text: str
) -> None:
    """The fields asked of Slurm and the row they fill are one list: a field added to the row
    without its Slurm name (or in another place) fails here, not in a wrong column."""
    assert [attr for _, attr in columns] == [f.name for f in dataclasses.fields(row)]
    assert [name for name, _ in columns] == format_text.replace(":|", "").split(",")
