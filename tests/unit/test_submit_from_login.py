"""Sites whose compute nodes may not submit: the job side leaves its successor to a keeper on
a login node (a request built by its own code), and says so (README: Sites that forbid
submission from compute nodes). Stand-in Slurm commands; the keeper's side is test_keeper.py."""

from __future__ import annotations

from pathlib import Path

from jobside import JobSide
from test_notify import QOS_LIMIT

from longrun import protocol, states
from longrun.chain_record import ChainRecord
from longrun.chain_view import build_view
from longrun.plan import WrapperOptions
from longrun.report import status_text
from longrun.slurm_output import QueueRow
from longrun.successor_request import parse_request
from slurmguard import SLURM_COMMANDS

# What sbatch says on a node a partition's AllocNodes leaves out (22.05 and 24.11 alike).
DENIED = "sbatch: error: Batch job submission failed: Access/permission denied"


def denied(side: JobSide) -> None:
    side.on_call("sbatch", f'echo "{DENIED}" >&2; exit 1')


def request_of(side: JobSide, job: str) -> list[str]:
    data = (side.chain.link_dir(job) / protocol.REQUEST).read_bytes()
    return list(parse_request(data).arguments)


def test_a_refused_link_leaves_its_successor_to_a_keeper_and_says_so(tmp_path: Path) -> None:
    side = JobSide(tmp_path)
    denied(side)
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    link = side.run("200", 0)
    assert link.returncode == 0
    assert side.bodies_run() == ["200"]  # the work goes on meanwhile
    (refused,) = side.events(protocol.SUBMIT_REFUSED)
    assert refused["error"] == DENIED
    (requested,) = side.events(protocol.SUCCESSOR_REQUESTED)
    assert requested["next"] == "2"
    assert "this cluster refuses submissions from compute nodes" in link.stderr
    assert "longrun keeper" in link.stderr
    assert DENIED in link.stderr
    # Not a stall: the link says what the successor waits for, and records no end.
    assert side.events(protocol.CHAIN_STALLED) == []
    assert any("waits for a keeper" in e["message"] for e in side.events(protocol.WARNING))
    assert side.chain.ended() is None
    # One sbatch, refused: no retry of a definite no.
    assert len(side.submitted()) == 1


def test_the_request_is_the_successor_the_link_would_have_queued(tmp_path: Path) -> None:
    """Built by the same code: the arguments a plain link gives sbatch, plus --submit-from."""
    (tmp_path / "plain").mkdir()
    (tmp_path / "refused").mkdir()
    plain = JobSide(tmp_path / "plain")
    plain.body_exits(protocol.CONTINUE_EXIT_CODE)
    plain.run("200", 0)
    (call,) = plain.submitted()
    refused = JobSide(tmp_path / "refused")
    denied(refused)
    refused.body_exits(protocol.CONTINUE_EXIT_CODE)
    refused.run("200", 0)
    arguments = request_of(refused, "200")
    same = call.split()[1:]  # (the stand-in logs them space-joined; none has a space here)
    own = [str(plain.chain.path), str(plain.tmp)]
    theirs = [str(refused.chain.path), str(refused.tmp)]
    expected = [_moved(a, own, theirs) for a in same] + ["--submit-from=login"]
    assert arguments == expected
    assert "--dependency=afterany:200" in arguments


def _moved(argument: str, old: list[str], new: list[str]) -> str:
    for before, after in zip(old, new):
        argument = argument.replace(before, after)
    return argument


def test_the_request_carries_the_environment_but_not_the_jobs_slurm_conf(tmp_path: Path) -> None:
    side = JobSide(tmp_path)
    side.chain.write_env({"PATH": "/opt/slurm/bin:/usr/bin", "SBATCH_ACCOUNT": "proj", "X": "1"})
    denied(side)
    side.run("200", 0, slurm_env={"SLURM_CONF": "/etc/slurm/node.conf"})
    request = parse_request((side.chain.link_dir("200") / protocol.REQUEST).read_bytes())
    assert request.env == {"PATH": "/opt/slurm/bin:/usr/bin", "SBATCH_ACCOUNT": "proj"}
    assert request.cwd == str(tmp_path)


def test_a_chain_submitted_from_login_never_runs_sbatch_on_the_node(tmp_path: Path) -> None:
    side = JobSide(tmp_path, WrapperOptions(submit_from=protocol.SUBMIT_FROM_LOGIN))
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    link = side.run("200", 0)
    assert link.returncode == 0 and side.bodies_run() == ["200"]
    assert side.submitted() == []
    assert side.events(protocol.SUBMIT_REFUSED) == []
    (requested,) = side.events(protocol.SUCCESSOR_REQUESTED)
    assert requested["reason"] == "--submit-from=login"
    assert request_of(side, "200")[-1] == "--submit-from=login"


def test_a_link_told_to_leave_it_to_a_keeper_does_so(tmp_path: Path) -> None:
    """The detection, once, holds for every later link: they get --submit-from=login."""
    side = JobSide(tmp_path)
    side.slurm_shows("200", states.TIMEOUT)
    side.previous_verdict("200", states.VERDICT_INTERRUPTED)
    link = side.run("201", 1, previous="200", arguments=("--submit-from=login",))
    assert link.returncode == 0, link.stderr
    assert side.submitted() == []
    assert side.events(protocol.SUCCESSOR_REQUESTED)


def test_a_link_with_a_bad_submit_from_argument_runs_nothing(tmp_path: Path) -> None:
    side = JobSide(tmp_path)
    link = side.run("200", 0, arguments=("--submit-from=elsewhere",))
    assert link.returncode == 2
    assert side.bodies_run() == []


def without_slurm(folder: Path) -> str:
    """A PATH with the system's commands but no Slurm command at all (a compute image
    without Slurm's client)."""
    folder.mkdir()
    for system in (Path("/usr/bin"), Path("/bin")):
        for command in system.iterdir():
            target = folder / command.name
            if command.name not in SLURM_COMMANDS and not target.exists():
                target.symlink_to(command)
    return str(folder)


def test_a_node_without_sbatch_leaves_it_to_a_keeper(tmp_path: Path) -> None:
    side = JobSide(tmp_path)
    (side.bin / "sbatch").unlink()
    link = side.run("200", 0, path=f"{side.bin}:{without_slurm(tmp_path / 'system')}")
    assert link.returncode == 0
    (refused,) = side.events(protocol.SUBMIT_REFUSED)
    assert "sbatch: command not found" in refused["error"]
    assert side.events(protocol.SUCCESSOR_REQUESTED)


def test_a_refused_sbatch_that_queued_the_job_all_the_same_is_found(tmp_path: Path) -> None:
    """A definite no is believed only once the tag look-up shows nothing queued."""
    side = JobSide(tmp_path)
    denied(side)
    tag = protocol.link_tag(side.chain.chain_id, 2)
    side.on_call("squeue", f'echo "301|PENDING|{tag}|"; exit 0')
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("200", 0)
    assert [e["successor"] for e in side.events(protocol.SUCCESSOR_FOUND)] == ["301"]
    assert side.events(protocol.SUBMIT_REFUSED) == []
    assert not (side.chain.link_dir("200") / protocol.REQUEST).exists()


def test_a_submit_limit_is_not_taken_for_a_node_that_may_not_submit(tmp_path: Path) -> None:
    side = JobSide(tmp_path)
    side.on_call(
        "sbatch", f'echo "sbatch: error: Batch job submission failed: {QOS_LIMIT}" >&2; exit 1'
    )
    side.run("200", 0)
    assert side.events(protocol.SUBMIT_REFUSED) == []
    assert side.events(protocol.SUCCESSOR_REQUESTED) == []
    assert side.events(protocol.SUCCESSOR_REFUSED)


def test_a_completed_link_cancels_the_successor_a_keeper_queued(tmp_path: Path) -> None:
    """The link does not know the job id a keeper got: it finds it by its tag at the end."""
    side = JobSide(tmp_path, WrapperOptions(submit_from=protocol.SUBMIT_FROM_LOGIN))
    tag = protocol.link_tag(side.chain.chain_id, 2)
    side.on_call("squeue", f'echo "777|PENDING|{tag}|"; exit 0')
    assert side.run("200", 0).returncode == 0
    assert side.chain.ended() == states.CHAIN_COMPLETED
    assert side.calls("scancel") == ["scancel 777"]
    assert [e["successor"] for e in side.events(protocol.SUCCESSOR_CANCELLED)] == ["777"]


def test_a_completed_link_whose_successor_is_not_queued_yet_ends_the_chain(
    tmp_path: Path,
) -> None:
    """Nothing to cancel yet: the recorded end stops the keeper (test_keeper.py) and any
    successor that starts after it."""
    side = JobSide(tmp_path, WrapperOptions(submit_from=protocol.SUBMIT_FROM_LOGIN))
    assert side.run("200", 0).returncode == 0
    assert side.chain.ended() == states.CHAIN_COMPLETED
    assert side.calls("scancel") == []


def row(job: str, state: str) -> QueueRow:
    return QueueRow(job, state, "None", "1:00", "0:00", "N/A", "N/A")


def test_status_says_the_cluster_refused_and_what_the_successor_waits_for(
    tmp_path: Path,
) -> None:
    side = JobSide(tmp_path)
    denied(side)
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("200", 0)
    meta = ChainRecord(chain_id=side.chain.chain_id, max_restarts=999)
    events = side.chain.read_events()
    running = build_view(meta, events, None, {"200": row("200", states.RUNNING)})
    assert running.submit_refused == DENIED and running.awaits_keeper
    text = status_text(running)
    assert f"refuses submissions from compute nodes: {DENIED}" in text
    assert "waits for a keeper on a login node: run `longrun keeper`" in text
    assert running.to_json()["awaits_keeper"] is True
    # The link ended and no keeper ran: the chain stalls, and says what it waits for.
    ended = build_view(meta, events, None, {"200": row("200", states.COMPLETED)})
    assert ended.state == states.CHAIN_STALLED
    assert "waits for a keeper on a login node" in ended.reason
    # A keeper queued it: nothing waits any more.
    queued = {"event": protocol.SUCCESSOR_QUEUED, "job": "200", "successor": "900", "by": "keeper"}
    kept = build_view(meta, [*events, queued], None, {"200": row("200", states.RUNNING)})
    assert not kept.awaits_keeper and kept.successor_job == "900"
    assert "Successor queued: job 900" in status_text(kept)
