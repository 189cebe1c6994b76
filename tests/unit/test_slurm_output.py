"""Parsers of Slurm's output, on output captured from the real local cluster (see data/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from longrun.errors import LongrunError
from longrun.slurm_output import parse_sacct, parse_sbatch_job_id, parse_squeue

DATA = Path(__file__).parent / "data"


def captured(name: str) -> str:
    return (DATA / name).read_text()


def test_sbatch_job_id_in_each_form() -> None:
    assert parse_sbatch_job_id(captured("sbatch_plain.txt")) == "51"
    assert parse_sbatch_job_id(captured("sbatch_parsable_cluster.txt")) == "57"
    assert parse_sbatch_job_id("52\n") == "52"


def test_sbatch_output_without_a_job_id_is_an_error() -> None:
    with pytest.raises(LongrunError, match="printed no job id"):
        parse_sbatch_job_id("sbatch: warning: something\n")


def test_squeue_rows_by_job_id() -> None:
    rows = parse_squeue(captured("squeue_queue_format.txt"))
    assert {job: row.state for job, row in rows.items()} == {
        "52": "RUNNING",
        "53": "PENDING",
        "54": "FAILED",
        "55": "COMPLETED",
        "56": "CANCELLED",
    }
    assert rows["53"].reason == "Dependency" and rows["53"].start == "N/A"
    assert rows["54"].reason == "NonZeroExitCode"
    assert rows["52"].time_used == "0:07" and rows["52"].time_left == "UNLIMITED"


def test_squeue_of_a_preempted_job() -> None:
    rows = parse_squeue(captured("squeue_queue_format_preempted.txt"))
    assert rows["58"].state == "FAILED" and rows["58"].reason == "NonZeroExitCode"
    assert rows["59"].state == "RUNNING" and rows["59"].time_left == "1-02:02:53"


def test_squeue_ignores_blank_and_short_lines() -> None:
    assert parse_squeue("\n  \nnot|enough|\n") == {}


def test_sacct_rows_with_cancelled_by_uid() -> None:
    rows = parse_sacct(captured("sacct_accounting.txt"))
    assert {job: row.state for job, row in rows.items()} == {
        "52": "RUNNING",
        "53": "PENDING",
        "54": "FAILED",
        "55": "COMPLETED",
        "56": "CANCELLED",  # "CANCELLED by 0"
    }
    assert rows["54"].exit_code == "3:0"
    assert rows["56"].elapsed == "00:00:03"


def test_sacct_preempted_job_recorded_failed_15() -> None:
    rows = parse_sacct(captured("sacct_accounting_preempted.txt"))
    assert (rows["58"].state, rows["58"].exit_code) == ("FAILED", "15:0")


def test_sacct_time_limit_node_failure_and_cancelled_requeued_job() -> None:
    rows = parse_sacct(captured("sacct_accounting_ends.txt"))
    assert {job: row.state for job, row in rows.items()} == {
        "61": "TIMEOUT",
        "63": "NODE_FAIL",
        "64": "CANCELLED",
    }
    assert rows["61"].elapsed == "00:01:29"


def test_squeue_of_jobs_past_their_limit_and_after_node_failure() -> None:
    rows = parse_squeue(captured("squeue_queue_format_ends.txt"))
    assert rows["63"].state == "NODE_FAIL" and rows["63"].reason == "NodeDown"
    assert rows["61"].time_left == "INVALID"


def test_sacct_keeps_the_last_record_of_a_requeued_job() -> None:
    # sacct -D lists every run of a requeued job under the same id; the last one is current.
    text = captured("sacct_accounting_requeue_duplicates.txt")
    lines = [line for line in text.splitlines() if line]
    assert len(lines) >= 2 and len({line.split("|")[0] for line in lines}) == 1
    assert lines[0].split("|")[1] == "PREEMPTED"
    assert parse_sacct(text)["64"].state == "CANCELLED"
