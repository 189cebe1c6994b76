"""chain.json as one typed, versioned record: written from the plan, read back equal, older
folders upgraded in one place, a wrong value named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longrun import chain_record
from longrun.chain_record import ArrayRecord, ChainRecord, LearningRecord, RecordError
from longrun.learning import LearningOptions
from longrun.plan import WrapperOptions
from plantest import chain_location, plan_of

DATA = Path(__file__).parent / "data"
WRITTEN_BEFORE_VERSIONS = sorted(
    [*(DATA / "chains").glob("*/chain.json"), *(DATA / "arrays").glob("*/chain.json")]
)


def record_of(argv: list[str], tmp_path: Path, **wrapper: object) -> ChainRecord:
    plan = plan_of(
        "#!/bin/bash\nsrun work\n",
        argv,
        ["a b", "--c"],
        where=chain_location(tmp_path, "/usr/bin"),
        wrapper=WrapperOptions(**wrapper),  # type: ignore[arg-type]
    )
    return ChainRecord.from_plan(
        plan, sbatch_argv=argv, script_source="job.sh", library_sha256="0" * 64, user="ann",
        uid=1000, host="login1", created="2026-12-01T03:00:00", longrun_version="1.0",
    )  # fmt: skip


def test_a_record_from_the_plan_reads_back_equal(tmp_path: Path) -> None:
    argv = ["--time=1:00", "--array=1-3%2", "--output=o_%A_%a", "--mem=1G", "-M", "alpha"]
    grow = LearningOptions(grow_mem_on_oom="2:4G")
    record = record_of(argv, tmp_path, max_restarts=7, learning=grow)
    again = ChainRecord.from_json(record.to_json())
    assert again == record
    assert record.version == chain_record.VERSION
    assert record.max_restarts == 7 and record.script_args == ("a b", "--c")
    assert record.array == ArrayRecord("1-3%2", (1, 2, 3), 2, "o_%A_%a", "")
    assert record.grows_memory and record.learning.grow_max_mb == 4096
    assert record.cluster_args() == ["-M", "alpha"]
    assert record.is_array


def test_a_plain_chain_has_no_array(tmp_path: Path) -> None:
    record = record_of(["--time=1:00"], tmp_path)
    assert not record.is_array and record.array is None and record.cluster_args() == []
    assert not ChainRecord.from_json(record.to_json()).is_array


@pytest.mark.parametrize("path", WRITTEN_BEFORE_VERSIONS, ids=lambda p: p.parent.name)
def test_folders_written_before_the_record_was_versioned_are_upgraded(path: Path) -> None:
    data = json.loads(path.read_text())
    assert "version" not in data  # written by an older longrun
    record = ChainRecord.from_json(path.read_text())
    assert record.version == chain_record.VERSION
    assert record.chain_id == data["chain_id"] and record.max_restarts == data["max_restarts"]
    assert record.is_array == bool(data.get("array"))
    if record.array:
        assert list(record.array.indices) == data["array"]["indices"]


def test_a_version_one_record_without_the_later_keys_takes_their_defaults() -> None:
    record = ChainRecord.from_dict({"chain_id": "c", "max_restarts": 3, "array": None})
    assert record.learning == LearningRecord() and record.successor_components == ()
    assert record.submit_from == "compute" and record.array is None


def test_a_newer_record_is_refused_with_what_to_do() -> None:
    with pytest.raises(RecordError, match=r"newer longrun.*upgrade longrun"):
        ChainRecord.from_dict({"chain_id": "c", "version": chain_record.VERSION + 1})


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ([], "not a chain's metadata"),
        ({"max_restarts": 1}, "no chain_id"),
        ({"chain_id": "c", "max_restarts": "9"}, "max_restarts is not a whole number"),
        ({"chain_id": "c", "max_restarts": True}, "max_restarts is not a whole number"),
        ({"chain_id": "c", "successor_options": "--mem=1G"}, "successor_options is not a list"),
        ({"chain_id": "c", "successor_options": [1]}, "successor_options is not text"),
        ({"chain_id": "c", "learning": {"grow_percent": 1.5}}, "learning.grow_percent"),
        ({"chain_id": "c", "array": {"indices": ["1"]}}, "array.indices"),
        ({"chain_id": "c", "forward_signal": "yes"}, "forward_signal is not true or false"),
    ],
)
def test_a_wrong_value_is_named(data: object, named: str) -> None:
    with pytest.raises(RecordError, match=named):
        ChainRecord.from_dict(data)


def test_unknown_keys_are_dropped_and_the_record_is_frozen() -> None:
    record = ChainRecord.from_dict({"chain_id": "c", "someday": 1})
    assert "someday" not in record.to_json()
    with pytest.raises(AttributeError):
        record.max_restarts = 5  # type: ignore[misc]
