"""The repair from the link's own command (links/<job>/command), against what a review tried:
an earlier run's command, a removed submit folder, a successor queued although sbatch failed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from jobside import JobSide
from test_keeper import Cluster, use
from test_successor_twins import CASES, TIMED_OUT, link_left_its_command

from longrun import chain_actions, protocol, slurm
from longrun.chain_store import StateDir
from longrun.errors import SlurmCommandError
from longrun.successor_request import parse_request

PLAIN = CASES[0]

# A tests/faults-style wrapper: `mv` onto links/<job>/command fails (the disk is full when the
# link replaces it); every other mv is the real one.
FAILING_MV = """#!/bin/bash
for target in "$@"; do :; done
case $target in */command) echo "mv: No space left on device" >&2; exit 1 ;; esac
exec /bin/mv "$@"
"""


def test_a_command_left_by_an_earlier_run_of_a_requeued_link_is_never_submitted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run 1 of job 100 wrote its command; it differed from what run 2 builds (here marked by
    # an --exclude run 1 had learned; in life: a hand-over's free link, a learned node).
    side = JobSide(tmp_path)
    side.on_call("sbatch", f'echo "{TIMED_OUT}" >&2; exit 1')
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    link = side.chain.link_dir("100")
    link.mkdir(parents=True)
    assert side.run("100", 0).returncode == 0
    first = parse_request((link / protocol.COMMAND).read_bytes())
    stale = list(first.arguments)
    stale.insert(1, "--exclude=vm-run1-only")
    data = (
        b"\0".join(s.encode() for s in (protocol.REQUEST_FORMAT, "0022", first.cwd, "0", *stale))
        + b"\0"
    )
    (link / protocol.COMMAND).write_bytes(data)
    # Slurm requeues job 100 (same id); run 2 cannot replace the command (disk full), and
    # every sbatch of run 2 fails too.
    mv = side.bin / "mv"
    mv.write_text(FAILING_MV)
    mv.chmod(0o755)
    (side.bin / "calls").unlink()
    assert side.run("100", 0, slurm_restarts=1).returncode == 0
    run2 = side.submitted()
    assert run2 and all("vm-run1-only" not in call for call in run2)
    assert not list(link.glob("command.tmp.*")), "the failed write's temporary file is gone"

    side.write_record()
    cluster = use(monkeypatch, Cluster({}))
    assert chain_actions.repair(side.chain, StateDir(side.chain.path.parent.parent)) == "900"
    submitted = cluster.submitted[-1]["args"]
    (repaired,) = side.events(protocol.REPAIRED)
    # Run 2 could not write its own, and run 1's is gone with the requeue: the repair builds
    # one from the events, never run 1's.
    assert not (link / protocol.COMMAND).exists()
    assert "--exclude=vm-run1-only" not in submitted
    assert repaired["built_by"] == "watcher"


def test_a_repair_without_the_links_command_submits_from_root_when_the_folder_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same link twice: from its command (cwd / when the folder is gone, as the job side
    # does) and without one (the Python builder: cwd = the removed folder).
    side = link_left_its_command(tmp_path, PLAIN)
    gone = tmp_path / "removed-submit-dir"
    record = side.chain.read_meta()
    side.chain.write_meta(dataclasses.replace(record, submit_dir=str(gone)))
    fake = tmp_path / "fake-bin"
    fake.mkdir()
    (fake / "sbatch").write_text("#!/bin/sh\necho 950\n")
    (fake / "sbatch").chmod(0o755)
    real_run = slurm.run
    cluster = Cluster({})

    def run(args, **kwargs):  # type: ignore[no-untyped-def]
        if args[0] == "sbatch":  # the real slurm.run, with a stand-in sbatch first on PATH
            monkeypatch.setenv("PATH", f"{fake}:/usr/bin:/bin")
            return real_run(args, **kwargs)
        return cluster.run(args, **kwargs)

    monkeypatch.setattr(slurm, "run", run)
    state = StateDir(side.chain.path.parent.parent)
    (link,) = [side.chain.link_dir(PLAIN.job)]
    command = link / protocol.COMMAND
    saved = command.read_bytes()
    command.unlink()  # killed before it built one: the fallback, from / as the link would
    assert chain_actions.repair(side.chain, state) == "950"
    # With the link's command (after the first repaired job ended before it started), too.
    cluster.jobs["950"] = ("NODE_FAIL", "")
    command.write_bytes(saved)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert chain_actions.repair(side.chain, state) == "950"
    built_by = [e["built_by"] for e in side.events(protocol.REPAIRED)]
    assert built_by == ["watcher", "link"]


def test_a_successor_queued_by_the_links_own_sbatch_is_found_not_queued_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The link's sbatch queued the successor but its answer (and the record) was lost.
    side = link_left_its_command(tmp_path, PLAIN)
    built = parse_request((side.chain.link_dir(PLAIN.job) / protocol.COMMAND).read_bytes())
    comment = next(a for a in built.arguments if a.startswith("--comment="))[10:]
    cluster = use(monkeypatch, Cluster({"777": ("PENDING", comment)}))
    state = StateDir(side.chain.path.parent.parent)
    cluster.squeue_fails = True  # no answer: nothing submitted
    with pytest.raises(SlurmCommandError):
        chain_actions.repair(side.chain, state)
    cluster.squeue_fails = False
    assert chain_actions.repair(side.chain, state) is None
    assert cluster.submitted == []
    assert [e["successor"] for e in side.events(protocol.SUCCESSOR_FOUND)] == ["777"]
