"""The keeper's decisions on stand-in Slurm answers: it queues exactly what a link requested,
looks for the tag before every submission, decides nothing without an answer, and gives an
ended chain no successor. The link's side is test_submit_from_login.py; the keeper on the real
cluster (watcher, detached, cron) is tests/e2e/test_keeper.py."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from jobside import JobSide

from longrun import keeper, protocol, slurm, states
from longrun.chain_record import ChainRecord
from longrun.chain_store import ChainFolder, StateDir
from longrun.errors import UsageError
from longrun.successor_request import Request, parse_request
from slurmguard import stand_ins

DENIED = "sbatch: error: Batch job submission failed: Access/permission denied"


class Cluster:
    """A stand-in for longrun.slurm.run: `squeue --me` shows `jobs` (id -> (state, comment));
    sbatch hands out ids from 900 on (or fails, after really queuing, with `lie`)."""

    def __init__(self, jobs: dict[str, tuple[str, str]]) -> None:
        self.jobs = jobs
        self.squeue_fails = False
        self.lie = False
        self.on_sbatch: Any = None
        self.calls: list[list[str]] = []
        self.submitted: list[dict[str, Any]] = []

    def run(self, args: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        args = [str(a) for a in args]
        self.calls.append(args)
        out = ""
        if args[0] == "squeue":
            if self.squeue_fails:
                words = "squeue: error: Socket timed out on send/recv operation"
                raise slurm.SlurmCommandError(args, words, None)
            if "--me" in args:
                out = "".join(f"{j}|{s}|{c}|\n" for j, (s, c) in self.jobs.items())
            else:  # -j: the queue format
                wanted = args[args.index("-j") + 1].split(",")
                out = "".join(
                    f"{j}|{self.jobs[j][0]}|None|1:00|0:00|N/A|N/A|N/A|N/A|N/A|\n"
                    for j in wanted
                    if j in self.jobs
                )
        elif args[0] == "sbatch":
            job = str(900 + len(self.submitted))
            self.submitted.append({"args": args[1:], **kwargs})
            comment = next(a for a in args if a.startswith("--comment="))[len("--comment=") :]
            self.jobs[job] = ("PENDING", comment)
            if self.on_sbatch:
                self.on_sbatch()
            if self.lie:
                self.lie = False
                raise slurm.SlurmCommandError(args, "sbatch: error: Socket timed out", 1)
            out = f"{job}\n"
        elif args[0] == "sacct":
            out = ""
        return subprocess.CompletedProcess(args, 0, out, "")

    def count(self, command: str, flag: str) -> int:
        return sum(1 for call in self.calls if call[0] == command and flag in call)


@pytest.fixture
def refused(tmp_path: Path) -> JobSide:
    """A chain whose first link (job 200) was refused by sbatch, left its successor to a
    keeper and runs its script: its folder as the real job side left it."""
    side = JobSide(tmp_path)
    side.on_call("sbatch", f'echo "{DENIED}" >&2; exit 1')
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    assert side.run("200", 0).returncode == 0
    side.chain.path.chmod(0o700)
    side.chain.write_meta(
        ChainRecord.from_dict(
            {"chain_id": side.chain.chain_id, "max_restarts": 999, "submit_dir": str(tmp_path)}
        )
    )
    return side


def state_of(side: JobSide) -> StateDir:
    return StateDir(side.chain.path.parent.parent)


def events(side: JobSide, kind: str) -> list[dict[str, Any]]:
    return [e for e in side.chain.read_events() if e["event"] == kind]


def request(side: JobSide) -> Request:
    return parse_request((side.chain.link_dir("200") / protocol.REQUEST).read_bytes())


def use(monkeypatch: pytest.MonkeyPatch, cluster: Cluster) -> Cluster:
    monkeypatch.setattr(slurm, "run", cluster.run)
    return cluster


def test_the_keeper_queues_what_the_running_link_requested(
    refused: JobSide, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = use(monkeypatch, Cluster({"200": ("RUNNING", "")}))
    monkeypatch.setenv("SLURM_CONF", "/etc/slurm/login.conf")
    assert keeper.keep_chain(refused.chain, state_of(refused), by="keeper") == ["900"]
    (sent,) = cluster.submitted
    asked = request(refused)
    assert sent["args"] == list(asked.arguments)  # with its --dependency=afterany:200
    assert sent["cwd"] == asked.cwd
    assert sent["env"] == {**asked.env, "SLURM_CONF": "/etc/slurm/login.conf"}
    (queued,) = events(refused, protocol.SUCCESSOR_QUEUED)
    assert (queued["job"], queued["successor"], queued["by"]) == ("200", "900", "keeper")
    assert state_of(refused).find("900").chain_id == refused.chain.chain_id
    # Known from now on: the next passes submit nothing.
    for _ in range(2):
        assert keeper.keep_chain(refused.chain, state_of(refused), by="keeper") == []
    assert len(cluster.submitted) == 1


def test_a_successor_already_queued_under_its_tag_is_recorded_not_submitted_again(
    refused: JobSide, monkeypatch: pytest.MonkeyPatch
) -> None:
    tag = protocol.link_tag(refused.chain.chain_id, 2)
    cluster = use(monkeypatch, Cluster({"200": ("RUNNING", ""), "555": ("PENDING", tag)}))
    assert keeper.keep_chain(refused.chain, state_of(refused), by="watcher") == []
    assert cluster.submitted == []
    (found,) = events(refused, protocol.SUCCESSOR_FOUND)
    assert (found["successor"], found["by"]) == ("555", "watcher")


def test_no_answer_from_squeue_decides_nothing(
    refused: JobSide, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = use(monkeypatch, Cluster({"200": ("RUNNING", "")}))
    cluster.squeue_fails = True
    assert keeper.keep_chain(refused.chain, state_of(refused), by="keeper") == []
    assert cluster.submitted == []
    assert events(refused, protocol.KEEPER_FAILED) == []


def test_an_ended_chain_gets_no_successor(
    refused: JobSide, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = use(monkeypatch, Cluster({"200": ("RUNNING", "")}))
    refused.chain.set_ended(states.CHAIN_CANCELLED)
    assert keeper.keep_chain(refused.chain, state_of(refused), by="keeper") == []
    assert cluster.submitted == [] and cluster.calls == []


def test_a_chain_that_ends_while_the_keeper_submits_gets_it_cancelled(
    refused: JobSide, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = use(monkeypatch, Cluster({"200": ("RUNNING", "")}))
    cluster.on_sbatch = lambda: refused.chain.set_ended(states.CHAIN_CANCELLED)
    assert keeper.keep_chain(refused.chain, state_of(refused), by="keeper") == ["900"]
    assert ["scancel", "900"] in cluster.calls
    (cancelled,) = events(refused, protocol.JOBS_CANCELLED)
    assert cancelled["jobs"] == "900"


def test_an_sbatch_that_failed_after_queuing_is_found_not_repeated(
    refused: JobSide, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Promise 3: a failed sbatch is "unknown"; the next pass looks for the tag first."""
    cluster = use(monkeypatch, Cluster({"200": ("RUNNING", "")}))
    cluster.lie = True
    assert keeper.keep_chain(refused.chain, state_of(refused), by="keeper") == []
    (failed,) = events(refused, protocol.KEEPER_FAILED)
    assert "Socket timed out" in failed["error"]
    assert keeper.keep_chain(refused.chain, state_of(refused), by="keeper") == []
    assert len(cluster.submitted) == 1
    assert [e["successor"] for e in events(refused, protocol.SUCCESSOR_FOUND)] == ["900"]


def test_a_link_that_ended_before_any_keeper_ran_is_continued_without_the_wait(
    refused: JobSide, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The link asked to go on (exit 75) and ended: the repair submits its own request, with
    no dependency on a job Slurm may have forgotten."""
    cluster = use(monkeypatch, Cluster({"200": ("COMPLETED", "")}))
    assert keeper.keep_chain(refused.chain, state_of(refused), by="keeper") == ["900"]
    (sent,) = cluster.submitted
    assert sent["args"] == [a for a in request(refused).arguments if "afterany" not in a]
    (repaired,) = events(refused, protocol.REPAIRED)
    assert repaired["successor"] == "900"


def test_one_pass_asks_squeue_once_for_every_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = use(monkeypatch, Cluster({}))
    state = StateDir(tmp_path / "state")
    state.ensure()
    for name, job in (("20261125-120000-aaaa", "200"), ("20261125-120000-bbbb", "300")):
        folder = ChainFolder(state.chains / name)
        link = folder.link_dir(job)
        link.mkdir(parents=True)
        folder.path.chmod(0o700)
        folder.write_meta(ChainRecord.from_dict({"chain_id": name, "max_restarts": 9}))
        (link / protocol.REQUEST).write_bytes(_request_bytes(job, tmp_path, name))
        (link / protocol.EVENTS).write_text(
            f'{{"event":"link_started","job":"{job}","restart_count":0}}\n'
            f'{{"event":"successor_requested","job":"{job}","restart_count":0,"next":"2"}}\n'
        )
        cluster.jobs[job] = ("RUNNING", "")
    ChainFolder(state.chains / "20261125-120000-cccc").path.mkdir()  # no request: not read
    done = keeper.keep_all(state)
    assert sorted(done.queued) == ["900", "901"] and done.chains == 2
    # The pass's one look for every chain, then one under each chain's lock before its sbatch.
    assert cluster.count("squeue", "--me") == 1 + 2
    assert keeper.keep_all(state).queued == []
    assert cluster.count("squeue", "--me") == 1 + 2  # nothing open: no question asked


def _request_bytes(job: str, cwd: Path, chain: str = "x") -> bytes:
    """A request as a link writes it, for link 1 (job `job`) of `chain`."""
    tag = protocol.link_tag(chain, 2)
    fields = [
        protocol.REQUEST_FORMAT, "0022", str(cwd), "1", "PATH=/usr/bin",
        "--parsable", f"--dependency=afterany:{job}", f"--comment={tag}", "link.sh",
    ]  # fmt: skip
    return "".join(f"{field}\0" for field in fields).encode()


def fields(*parts: str) -> bytes:
    return "".join(f"{part}\x00" for part in parts).encode()


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "not a longrun request"),
        (fields("other"), "not a longrun request"),
        (fields(protocol.REQUEST_FORMAT, "0022", "relative", "0", "--parsable"), "damaged"),
        (fields(protocol.REQUEST_FORMAT, "0022", "/x", "5", "A=1", "--parsable"), "damaged"),
        (fields(protocol.REQUEST_FORMAT, "0022", "/x", "0"), "damaged"),
        (fields(protocol.REQUEST_FORMAT, "0022", "/x", "1", "A=1") + b"no end", "not a longrun"),
    ],
)
def test_a_damaged_request_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_request(data)


def test_the_cron_line_runs_one_pass_with_the_installing_shells_path(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "my state")
    env = {"PATH": "/opt/slurm/bin:/usr/bin", "SLURM_CONF": "/etc/slurm/slurm.conf", "X": "1"}
    line = keeper.cron_line(state, ["/home/ann/.venv/bin/longrun"], env)
    assert line.startswith("* * * * * PATH=/opt/slurm/bin:/usr/bin SLURM_CONF=/etc/slurm/")
    assert "/home/ann/.venv/bin/longrun keeper --once --state-dir " in line
    assert f"'{tmp_path}/my state'" in line  # quoted for the shell cron runs it with
    assert line.endswith(f"{keeper.CRON_MARK} {tmp_path}/my state")
    assert "\n" not in line
    percent = keeper.cron_line(StateDir(tmp_path / "100%"), ["longrun"], {})
    assert "100\\%" in percent and "100%" not in percent.replace("\\%", "")


def test_installing_twice_keeps_one_line_and_uninstalling_keeps_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = tmp_path / "crontab.txt"
    table.write_text("0 3 * * * backup.sh\n")
    crontab = stand_ins(
        tmp_path / "bin",
        crontab=f'if [ "$1" = -l ]; then cat {table}; '
        f"else cat >{table}.new && mv {table}.new {table}; fi",
    )
    monkeypatch.setenv("PATH", f"{crontab}:/usr/bin:/bin")
    state = StateDir(tmp_path / "state")
    assert keeper.install(state).startswith("installed: * * * * *")
    assert keeper.install(state).startswith("already installed")
    lines = table.read_text().splitlines()
    assert lines[0] == "0 3 * * * backup.sh" and len(lines) == 2
    assert keeper.install(state, remove=True) == "removed the keeper from your crontab"
    assert table.read_text() == "0 3 * * * backup.sh\n"
    assert keeper.install(state, remove=True) == "nothing to change"


def test_install_without_cron_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UsageError, match="crontab is not on PATH"):
        keeper.install(StateDir(tmp_path / "state"))
