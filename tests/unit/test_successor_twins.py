"""A successor is built by the job side: the watcher's repair submits the command the link
built (its `command` file, or its `request` for a keeper) without the wait on the ended link.

Only a link killed before it built its successor leaves none; for it the repair builds one in
Python from the link's events. The two builders are held to one table of cases here: each case
runs a real link (the rendered library, stand-in Slurm commands) whose every sbatch fails, then
repairs it twice, from the link's own command and from the events alone, and compares.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from jobside import JobSide
from test_keeper import Cluster, use

from longrun import chain_actions, protocol, states
from longrun.chain_record import ChainRecord
from longrun.chain_store import StateDir
from longrun.learning import LearningOptions
from longrun.plan import WrapperOptions
from longrun.successor_request import parse_request

TIMED_OUT = "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation"


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...] = ()
    wrapper: WrapperOptions = field(default_factory=WrapperOptions)
    job: str = "100"
    restart: int = 0
    previous: str = ""
    previous_verdict: str = ""
    previous_state: str = ""
    # What only the job side knows (a known difference, said in the README).
    only_job_side: tuple[str, ...] = ()


CASES = [
    Case("plain"),
    Case("sbatch options and --export=NAMES", argv=("--time=5", "--export=HOME,LANG")),
    Case("a later link", job="101", restart=1, previous="100", previous_verdict="continue"),
    Case(
        "a retry taken by the link's own judging",
        wrapper=WrapperOptions(retry_failed=2),
        job="101",
        restart=1,
        previous="100",
        previous_verdict="failed",
        previous_state=states.FAILED,
    ),
    Case(
        "memory grown after OUT_OF_MEMORY",
        argv=("--mem=100M",),
        wrapper=WrapperOptions(learning=LearningOptions(grow_mem_on_oom="2")),
        job="101",
        restart=1,
        previous="100",
        previous_verdict="out_of_memory",
        previous_state=states.OUT_OF_MEMORY,
    ),
    Case("submitted with --submit-from=login", wrapper=WrapperOptions(submit_from="login")),
    Case(
        "a node the chain avoids",
        job="101",
        restart=1,
        previous="100",
        previous_verdict="",
        previous_state=states.NODE_FAIL,
        only_job_side=("--exclude=vm-dead",),
    ),
]


def link_left_its_command(tmp_path: Path, case: Case) -> JobSide:
    """The link of `case` ran (its body asked for a new allocation); every sbatch failed."""
    settings = {"SLURM_MEM_PER_NODE": "100"} if "--mem=100M" in case.argv else {}
    side = JobSide(tmp_path, wrapper=case.wrapper, argv=list(case.argv))
    side.on_call("sbatch", f'echo "{TIMED_OUT}" >&2; exit 1')
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.partition_has("vm-dead", "vm-b")
    if case.previous:
        previous = side.chain.link_dir(case.previous)
        previous.mkdir(parents=True)
        (previous / protocol.EVENTS).write_text(
            f'{{"event":"link_started","job":"{case.previous}","restart_count":0,"t":1,'
            '"previous":"","retries":"0","nodes":"vm-dead"}\n'
        )
        if case.previous_verdict:
            side.previous_verdict(case.previous, case.previous_verdict)
        side.slurm_shows(case.previous, case.previous_state or states.TIMEOUT)
        if case.only_job_side:  # it ran on vm-dead
            (previous / protocol.LEARNED).write_text("nodes=vm-dead\nstarted=1\nended=2\n")
    side.chain.write_env({"PATH": "/usr/bin:/bin", "HOME": "/home/ann", "LANG": "C", "X": "1"})
    ran = side.run(
        case.job, case.restart, case.previous, 0,
        slurm_env={**settings, "SLURM_JOB_NODELIST": "vm-b", "SLURMD_NODENAME": "vm-b"},
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    side.chain.path.chmod(0o700)
    record = ChainRecord.from_plan(
        side.plan, sbatch_argv=list(case.argv), script_source="job.sh", library_sha256="",
        user="ann", uid=0, host="login", created="2026-12-01T00:00:00", longrun_version="t",
    )  # fmt: skip
    side.chain.write_meta(record)
    return side


def normal(arguments: list[str]) -> tuple[list[str], str, list[str]]:
    """sbatch's options (order free, but not across a heterogeneous job's `:`), the script, and
    its arguments (order free)."""
    script = next(i for i, a in enumerate(arguments) if a.endswith("/link.sh"))
    groups = " ".join(arguments[:script]).split(" : ")
    return (
        [" ".join(sorted(g.split())) for g in groups],
        arguments[script],
        sorted(arguments[script + 1 :]),
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_repair_submits_the_links_own_command_and_the_fallback_agrees(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    side = link_left_its_command(tmp_path, case)
    link = side.chain.link_dir(case.job)
    login = case.wrapper.submit_from == protocol.SUBMIT_FROM_LOGIN
    name = protocol.REQUEST if login else protocol.COMMAND
    built = parse_request((link / name).read_bytes())
    # What the link gave sbatch is what it wrote down (a link that may not submit: none).
    attempts = side.submitted()
    assert attempts == ([] if login else ["sbatch " + " ".join(built.arguments)])
    assert f"--dependency=afterany:{case.job}" in built.arguments

    cluster = use(monkeypatch, Cluster({}))
    state = StateDir(side.chain.path.parent.parent)
    assert chain_actions.repair(side.chain, state) == "900"
    from_link = cluster.submitted[-1]
    assert from_link["args"] == list(built.without_dependency())
    assert from_link["cwd"] == built.cwd
    (repaired,) = [e for e in side.chain.read_events() if e["event"] == protocol.REPAIRED]
    assert repaired["built_by"] == "link"
    assert repaired["command"] == shlex.join(["sbatch", *from_link["args"]])

    # The same link, killed before it built its successor: the repair's own (after the first
    # repaired successor died before it started).
    cluster.jobs["900"] = (states.NODE_FAIL, cluster.jobs["900"][1])
    (link / name).unlink()
    assert chain_actions.repair(side.chain, state) == "901"
    from_events = cluster.submitted[-1]
    built_by = [e["built_by"] for e in side.chain.read_events() if e["event"] == protocol.REPAIRED]
    assert built_by == ["link", "watcher"]
    link_options, link_script, link_arguments = normal(from_link["args"])
    options, script, arguments = normal(from_events["args"])
    for only in case.only_job_side:
        link_options = [" ".join(w for w in g.split() if w != only) for g in link_options]
    assert (options, script, arguments) == (link_options, link_script, link_arguments)
    assert from_events["cwd"] == from_link["cwd"]
    assert from_events["env"] == from_link["env"]
