"""chain.json: what a chain was submitted with, written once and read back typed.

One frozen record, versioned: every reader gets a `ChainRecord`, never the JSON dict, and a
folder written by an older longrun is upgraded here and nowhere else (`_upgrade`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Callable

from . import protocol, slurm
from .environment import EXPORT_ALL

if TYPE_CHECKING:
    from .plan import LinkPlan

# 1: longrun <= 0.x, without "version"; keys added later (learning, array, submit_from,
# successor_components) were absent. 2: every key written, "version" included.
VERSION = 2


class RecordError(ValueError):
    """chain.json is not a chain's metadata (the reader says which file)."""


@dataclass(frozen=True)
class LearningRecord:
    """What the chain learns from (README: A chain that learns); 0 is off."""

    avoid_seconds: int = 0
    node_check: tuple[str, ...] = ()
    grow_percent: int = 0
    grow_max_mb: int = 0
    max_idle_links: int = 0
    total_seconds: int = 0


@dataclass(frozen=True)
class ArrayRecord:
    """An array chain's --array and the --output/--error its later links resolve."""

    spec: str
    indices: tuple[int, ...]
    throttle: int | None = None
    output: str = ""
    error: str = ""


@dataclass(frozen=True)
class ChainRecord:
    chain_id: str
    created: str = ""
    longrun_version: str = ""
    library_sha256: str = ""
    user: str = ""
    uid: int = -1
    host: str = ""
    job_name: str = ""
    script: str = ""
    script_args: tuple[str, ...] = ()
    submit_dir: str = ""
    sbatch_argv: tuple[str, ...] = ()
    first_options: tuple[str, ...] = ()
    successor_options: tuple[str, ...] = ()
    successor_components: tuple[str, ...] = ()
    max_restarts: int = 0
    retry_failed: int = 0
    continue_exit_code: int | None = None
    check_signal: str = ""
    forward_signal: bool = False
    clusters: str | None = None
    comment_prefix: str = ""
    export_mode: str = EXPORT_ALL
    export_names: tuple[str, ...] = ()
    submit_from: str = protocol.SUBMIT_FROM_COMPUTE
    learning: LearningRecord = field(default_factory=LearningRecord)
    array: ArrayRecord | None = None
    version: int = VERSION

    @classmethod
    def from_plan(
        cls,
        plan: LinkPlan,
        *,
        sbatch_argv: Sequence[str],
        script_source: str,
        library_sha256: str,
        user: str,
        uid: int,
        host: str,
        created: str,
        longrun_version: str,
    ) -> ChainRecord:
        """The record of a chain about to be submitted (what the facts of the moment are is
        the caller's: user, host, time)."""
        array = plan.array
        return cls(
            chain_id=plan.chain_id, created=created, longrun_version=longrun_version,
            library_sha256=library_sha256, user=user, uid=uid, host=host,
            job_name=plan.job_name, script=script_source, script_args=tuple(plan.script_args),
            submit_dir=plan.submit_dir, sbatch_argv=tuple(sbatch_argv),
            first_options=tuple(plan.first_options),
            successor_options=tuple(plan.successor_options),
            successor_components=tuple(plan.successor_components),
            max_restarts=plan.max_restarts, retry_failed=plan.retry_failed,
            continue_exit_code=plan.continue_code, check_signal=plan.check_signal,
            forward_signal=plan.forward_signal, clusters=plan.clusters,
            comment_prefix=plan.comment_prefix, export_mode=plan.export.mode,
            export_names=tuple(plan.export.names), submit_from=plan.submit_from,
            learning=LearningRecord(
                avoid_seconds=plan.learning.avoid_seconds,
                node_check=tuple(plan.learning.node_check),
                grow_percent=plan.learning.grow_percent,
                grow_max_mb=plan.learning.grow_max_mb,
                max_idle_links=plan.learning.max_idle_links,
                total_seconds=plan.learning.total_seconds,
            ),
            array=ArrayRecord(
                spec=array.spec, indices=tuple(array.indices), throttle=array.throttle,
                output=plan.output_pattern, error=plan.error_pattern,
            )
            if array
            else None,
        )  # fmt: skip

    @property
    def is_array(self) -> bool:
        return self.array is not None

    @property
    def grows_memory(self) -> bool:
        return self.learning.grow_percent > 0

    def cluster_args(self) -> list[str]:
        """-M CLUSTERS for every Slurm command of a chain submitted with -M/--clusters."""
        return slurm.cluster_args(self.clusters)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> ChainRecord:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: Any) -> ChainRecord:
        """The record from chain.json's object, upgraded; RecordError names a wrong field."""
        if not isinstance(data, dict):
            raise RecordError("not a chain's metadata")
        data = _upgrade(data)
        values = {
            f.name: _READERS[f.name](data[f.name], f.name) for f in fields(cls) if f.name in data
        }
        if "chain_id" not in values:
            raise RecordError("not a chain's metadata: no chain_id")
        return cls(**values)


def _upgrade(data: Mapping[str, Any]) -> dict[str, Any]:
    """Older versions, brought to this one in one place; unknown keys are dropped."""
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version > VERSION:
        raise RecordError(f"written by a newer longrun (version {version!r}); upgrade longrun")
    known = {f.name for f in fields(ChainRecord)}
    upgraded = {key: value for key, value in data.items() if key in known}
    if version == 1:  # written before the record was versioned: absent keys take defaults
        upgraded = {key: value for key, value in upgraded.items() if value is not None}
    upgraded["version"] = VERSION
    return upgraded


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise RecordError(f"{name} is not text")
    return value


def _number(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise RecordError(f"{name} is not a whole number")
    return value


def _words(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise RecordError(f"{name} is not a list")
    return tuple(_text(word, name) for word in value)


def _optional(read: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    return lambda value, name: None if value is None else read(value, name)


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise RecordError(f"{name} is not true or false")
    return value


def _object(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise RecordError(f"{name} is not an object")
    return value


def _learning(value: Any, name: str) -> LearningRecord:
    data = _object(value, name)
    return LearningRecord(
        avoid_seconds=_number(data.get("avoid_seconds", 0), "learning.avoid_seconds"),
        node_check=_words(data.get("node_check", []), "learning.node_check"),
        grow_percent=_number(data.get("grow_percent", 0), "learning.grow_percent"),
        grow_max_mb=_number(data.get("grow_max_mb", 0), "learning.grow_max_mb"),
        max_idle_links=_number(data.get("max_idle_links", 0), "learning.max_idle_links"),
        total_seconds=_number(data.get("total_seconds", 0), "learning.total_seconds"),
    )


def _array(value: Any, name: str) -> ArrayRecord:
    data = _object(value, name)
    indices = data.get("indices", [])
    if not isinstance(indices, list):
        raise RecordError("array.indices is not a list")
    return ArrayRecord(
        spec=_text(data.get("spec", ""), "array.spec"),
        indices=tuple(_number(index, "array.indices") for index in indices),
        throttle=_optional(_number)(data.get("throttle"), "array.throttle"),
        output=_text(data.get("output") or "", "array.output"),
        error=_text(data.get("error") or "", "array.error"),
    )


_READERS: dict[str, Callable[[Any, str], Any]] = {
    **{
        name: _text
        for name in (
            "chain_id",
            "created",
            "longrun_version",
            "library_sha256",
            "user",
            "host",
            "job_name",
            "script",
            "submit_dir",
            "check_signal",
            "comment_prefix",
            "export_mode",
            "submit_from",
        )
    },
    **{
        name: _words
        for name in (
            "script_args",
            "sbatch_argv",
            "first_options",
            "successor_options",
            "successor_components",
            "export_names",
        )
    },
    **{name: _number for name in ("uid", "max_restarts", "retry_failed", "version")},
    "continue_exit_code": _optional(_number),
    "forward_signal": _flag,
    "clusters": _optional(_text),
    "learning": _learning,
    "array": _optional(_array),
}
