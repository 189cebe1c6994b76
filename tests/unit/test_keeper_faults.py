"""The keeper against damaged files, lost answers and links that died: what a review found,
each fixed here (README: Sites that forbid submission from compute nodes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jobside import JobSide
from test_keeper import DENIED, Cluster, _request_bytes, events, state_of, use

from longrun import chain_actions, keeper, protocol, slurm, states, watcher
from longrun.chain_reading import live_view
from longrun.chain_record import ChainRecord
from longrun.chain_store import ChainFolder
from longrun.plan import WrapperOptions
from longrun.slurm_output import AccountingRow, TaggedRow
from longrun.successor_request import parse_request
from slurmguard import stand_ins

ARRAY_ENV = {
    "SLURM_ARRAY_JOB_ID": "3193", "SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "5",
    "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "4", "SLURM_ARRAY_TASK_STEP": "1",
}  # fmt: skip


def refused_link(tmp_path: Path, job: str = "200", **run: Any) -> JobSide:
    side = JobSide(tmp_path, argv=run.pop("argv", None))
    side.on_call("sbatch", f'echo "{DENIED}" >&2; exit 1')
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run(job, 0, **run)
    side.chain.path.chmod(0o700)
    return side


def plain_meta(side: JobSide, tmp_path: Path) -> None:
    side.chain.write_meta(
        ChainRecord.from_dict(
            {"chain_id": side.chain.chain_id, "max_restarts": 999, "submit_dir": str(tmp_path)}
        )
    )


def array_meta(side: JobSide, tmp_path: Path) -> None:
    side.chain.write_meta(ChainRecord.from_dict({
        "chain_id": side.chain.chain_id, "max_restarts": 999, "submit_dir": str(tmp_path),
        "array": {"error": "", "indices": [0, 1, 2, 3, 4], "output": "out_%A_%a.txt",
                  "spec": "0-4", "throttle": None},
        "successor_options": [],
    }))  # fmt: skip
    side.chain.append_event(protocol.SUBMITTED, job="3193", restart_count=0)


class Quiet:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)


def test_a_damaged_event_in_one_chain_stops_no_keeper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    side = refused_link(tmp_path)
    plain_meta(side, tmp_path)
    state = state_of(side)
    damaged = ChainFolder(state.chains / "20261125-110000-dddd")  # read before the healthy one
    link = damaged.link_dir("300")
    link.mkdir(parents=True)
    damaged.path.chmod(0o700)
    damaged.write_meta(ChainRecord.from_dict({"chain_id": damaged.chain_id, "max_restarts": 9}))
    (link / protocol.REQUEST).write_bytes(_request_bytes("300", tmp_path))
    (link / protocol.EVENTS).write_text(
        '{"event":"link_started","job":"300","restart_count":0}\n'
        '{"event":"successor_requested","job":"300","restart_count":0,"next":"\u00b2"}\n'
    )
    cluster = use(monkeypatch, Cluster({"200": ("RUNNING", ""), "300": ("RUNNING", "")}))
    assert keeper.keep_all(state).queued == ["900"]  # the healthy chain's
    (sent,) = cluster.submitted
    assert "--dependency=afterany:200" in sent["args"]
    # The watcher of a chain with such a line goes on too.
    with (side.chain.link_dir("200") / protocol.EVENTS).open("a") as handle:
        handle.write('{"event":"successor_requested","job":"200","next":"\u00b2"}\n')
    watcher._keep(side.chain, state, Quiet())  # type: ignore[arg-type]


def test_an_elements_first_link_is_continued_without_its_wait_once_it_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An element's first link waits as ARRAYJOB_TASK, not by its own job id."""
    side = refused_link(tmp_path, "3200", argv=["--array=0-4"], slurm_env=ARRAY_ENV)
    array_meta(side, tmp_path)
    asked = parse_request((side.chain.link_dir("3200") / protocol.REQUEST).read_bytes())
    assert "--dependency=afterany:3193_0" in asked.arguments
    cluster = use(monkeypatch, Cluster({}))  # ended, and forgotten by slurmctld
    assert keeper.keep_chain(side.chain, state_of(side), by="keeper") == ["900"]
    (sent,) = cluster.submitted
    assert not any(a.startswith("--dependency") for a in sent["args"])


def test_an_element_that_ends_while_the_keeper_submits_gets_it_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    side = refused_link(tmp_path, "3200", argv=["--array=0-4"], slurm_env=ARRAY_ENV)
    array_meta(side, tmp_path)
    cluster = use(monkeypatch, Cluster({"3200": ("RUNNING", "")}))
    cluster.on_sbatch = lambda: side.chain.set_ended(states.CHAIN_COMPLETED, 0)
    assert keeper.keep_chain(side.chain, state_of(side), by="keeper") == ["900"]
    assert ["scancel", "900"] in cluster.calls


def test_a_successor_the_link_finds_by_its_tag_is_named_in_an_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keeper's answer was lost; the link finds the job by its tag at its end: an event
    names it, so that status sees it and `longrun cancel` cancels it."""
    side = JobSide(tmp_path, WrapperOptions(submit_from=protocol.SUBMIT_FROM_LOGIN))
    tag = protocol.link_tag(side.chain.chain_id, 2)
    side.on_call("squeue", f'echo "900|PENDING|{tag}|"; exit 0')
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    assert side.run("200", 0).returncode == 0
    (found,) = side.events(protocol.SUCCESSOR_FOUND)
    assert found["successor"] == "900"
    side.chain.path.chmod(0o700)
    plain_meta(side, tmp_path)
    cluster = use(monkeypatch, Cluster({"200": ("COMPLETED", ""), "900": ("PENDING", tag)}))
    view = live_view(side.chain)
    assert view.successor_job == "900" and not view.awaits_keeper
    assert "900" in chain_actions.cancel_chain(side.chain).cancelled
    assert any(call[0] == "scancel" and "900" in call for call in cluster.calls)


def test_a_completed_link_that_cannot_look_for_its_successor_says_so(tmp_path: Path) -> None:
    side = JobSide(tmp_path, WrapperOptions(submit_from=protocol.SUBMIT_FROM_LOGIN))
    side.on_call("squeue", 'echo "squeue: error: Socket timed out" >&2; exit 1')
    assert side.run("200", 0).returncode == 0
    assert side.chain.ended() == states.CHAIN_COMPLETED
    said = [e["message"] for e in side.events(protocol.WARNING)]
    assert any("squeue did not answer" in message for message in said), said


def killed_link(tmp_path: Path) -> JobSide:
    """A link that left its request and was killed before any verdict (its batch shell got
    SIGKILL: a lost node, an OOM kill)."""
    side = JobSide(tmp_path)
    side.on_call("sbatch", f'echo "{DENIED}" >&2; exit 1')
    side.body_runs("kill -9 $PPID")
    side.run("200", 0)
    side.chain.path.chmod(0o700)
    plain_meta(side, tmp_path)
    return side


def test_a_link_killed_and_forgotten_is_continued_by_the_keeper_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No verdict (the batch shell was killed), and slurmctld forgot the job: the keeper asks
    sacct itself, as the watcher does, then continues the chain."""
    side = killed_link(tmp_path)
    assert side.events(protocol.SUCCESSOR_REQUESTED) and not side.events("verdict")
    use(monkeypatch, Cluster({}))
    row = AccountingRow(
        "200", "NODE_FAIL", "0:0", "2026-11-30T10:00:00", "2026-11-30T11:00:00", "01:00:00",
        "None",
    )  # fmt: skip
    monkeypatch.setattr(slurm, "accounting_rows", lambda jobs, clusters=(): {"200": row})
    assert keeper.keep_all(state_of(side)).queued == ["900"]


def test_a_link_forgotten_while_sacct_is_silent_waits_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    side = killed_link(tmp_path)
    cluster = use(monkeypatch, Cluster({}))

    # (accounting_rows: None is sacct's silence, an empty answer "no record")
    monkeypatch.setattr(slurm, "accounting_rows", lambda jobs, clusters=(): None)
    assert keeper.keep_all(state_of(side)).queued == []
    assert cluster.submitted == []
    (failed,) = events(side, protocol.KEEPER_FAILED)
    assert "sacct" in failed["error"]


def login_sbatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real program as sbatch (it records its folder), and squeue answers by stand-ins."""
    log = tmp_path / "sbatch-cwd"
    bin_dir = stand_ins(tmp_path / "login-bin", sbatch=f"pwd >{log}; echo 900")
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(slurm, "user_jobs", lambda clusters=(): [TaggedRow("200", "RUNNING", "")])
    monkeypatch.setattr(slurm, "tagged_jobs", lambda tag, clusters=(): [])
    return log


def with_cwd(side: JobSide, cwd: str) -> None:
    path = side.chain.link_dir("200") / protocol.REQUEST
    fields = path.read_bytes().split(b"\0")
    fields[2] = cwd.encode()
    path.write_bytes(b"\0".join(fields))


@pytest.mark.parametrize("kind", ["deleted", "a file"])
def test_a_submit_directory_that_is_gone_is_replaced_by_the_root_as_the_link_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    side = refused_link(tmp_path)
    plain_meta(side, tmp_path)
    log = login_sbatch(tmp_path, monkeypatch)
    gone = tmp_path / "project"
    if kind == "a file":
        gone.write_text("")
    with_cwd(side, str(gone))
    assert keeper.keep_all(state_of(side)).queued == ["900"]
    assert log.read_text().strip() == "/"


def test_a_request_without_the_links_tag_is_not_submitted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keeper looks for the tag the event names: a request that carries another could be
    submitted again on every pass."""
    side = refused_link(tmp_path)
    plain_meta(side, tmp_path)
    path = side.chain.link_dir("200") / protocol.REQUEST
    fields = [f for f in path.read_bytes().split(b"\0") if not f.startswith(b"--comment=")]
    path.write_bytes(b"\0".join(fields))
    cluster = use(monkeypatch, Cluster({"200": ("RUNNING", "")}))
    assert keeper.keep_chain(side.chain, state_of(side), by="keeper") == []
    assert cluster.submitted == []
    (failed,) = events(side, protocol.KEEPER_FAILED)
    assert "tag" in failed["error"]
