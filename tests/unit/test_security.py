"""Another user on the cluster can never run code as you (issue 25): each test performs one
attack, as a second Unix user (tests/attacker.py) where the attack needs one, and checks that
nothing ran as the victim, nothing outside the chain folder changed, and that the command still
works or refuses with a clear message. The victim is the test process (root); root owning a
folder is trusted, like the user.

Hostile files that only crash or hang readers are tested in test_hostile_files.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from attacker import as_attacker, attacker_ids, let_attacker_in, shared_folder
from chainfiles import ended_chain, watched_stall
from jobside import JobSide

from longrun import chain_actions, chain_reading, slurm, watcher
from longrun.chain_store import ChainFolder, StateDir, check_trusted_path
from longrun.errors import RepairRefused, StateError
from longrun.files import write_atomic
from longrun.render import render_library, render_link_script, shquote
from longrun.view_cache import _keep as keep
from plantest import chain_location, plan_of
from slurmguard import SLURM_COMMANDS, stand_ins

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="attacks need a second user: run as root")
CHAINS = Path(__file__).parent / "data" / "chains"


# --- 1. The detached watcher never imports from the submit directory ------------------------
def test_the_detached_watcher_does_not_import_a_module_planted_in_the_submit_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    submit = shared_folder(tmp_path / "project", 0o777)
    marker = tmp_path / "pwned"
    planted = f"import os\nopen({str(marker)!r}, 'w').write(str(os.getuid()))\n"

    def plant() -> None:
        (submit / "longrun").mkdir()
        for name in ("__init__.py", "__main__.py"):
            (submit / "longrun" / name).write_text(planted)
        (submit / "click.py").write_text(planted)

    as_attacker(plant)
    folder, state = ended_chain(tmp_path / "home")
    monkeypatch.chdir(submit)
    pid, log = watcher.start_detached(folder, state, verbose=False)
    wait_for_exit(pid)
    assert not marker.exists(), "a module planted in the submit directory ran as the victim"
    assert f"Chain {folder.chain_id} COMPLETED" in log.read_text()


# --- 2. The whole path is checked, on both sides, before every submission -------------------
def test_a_state_directory_in_a_folder_others_can_write_is_refused(tmp_path: Path) -> None:
    shared = shared_folder(tmp_path / "group", 0o777)
    with pytest.raises(StateError, match="writable by other users"):
        StateDir(shared / "state").ensure()
    # A sticky folder (like /tmp) lets nobody rename what is not theirs: accepted.
    sticky = shared_folder(tmp_path / "scratch", 0o1777)
    StateDir(sticky / "state").ensure()


def test_a_symbolic_link_of_another_user_on_the_path_is_refused(tmp_path: Path) -> None:
    sticky = shared_folder(tmp_path / "scratch", 0o1777)
    real = tmp_path / "mine"
    StateDir(real).ensure()
    as_attacker(lambda: (sticky / "state").symlink_to(real))
    with pytest.raises(StateError, match="symbolic link of another user"):
        check_trusted_path(sticky / "state" / "chains")
    # The user's own symbolic link is followed, and the folders it leads to are checked.
    (tmp_path / "own").symlink_to(real)
    check_trusted_path(tmp_path / "own" / "chains")


def test_the_attackers_swap_of_the_chain_folder_is_refused_by_the_link(tmp_path: Path) -> None:
    # The victim's state directory lies in a group folder without the sticky bit. The
    # attacker renames the victim's folder away and puts a tree of their own in its place;
    # the link, started after the swap, finds the whole path untrusted and runs nothing.
    shared = shared_folder(tmp_path / "group", 0o755)
    side = JobSide(tmp_path, base=shared)
    shared.chmod(0o777)
    marker = tmp_path / "pwned"

    def swap() -> None:
        os.rename(shared / "state", shared / "state.victim")
        chain = Path(side.chain.path.as_posix().replace("/state/", "/state.evil/"))
        shutil.copytree(shared / "state.victim", shared / "state.evil", symlinks=True)
        (chain / "env").write_text(f"PATH={tmp_path}/evil\0")
        os.rename(shared / "state.evil", shared / "state")

    as_attacker_with_access(side, swap)
    link = side.run("100", 0)
    assert link.returncode == 1
    assert "refusing to run" in link.stderr and "writable by other users" in link.stderr
    assert side.bodies_run() == [] and side.submitted() == []
    assert not marker.exists()


def test_the_refusal_writes_nothing_through_the_attackers_links(tmp_path: Path) -> None:
    # The attacker's copy of the state directory, with the names of the refusal's temporary
    # file planted as links to a file of the victim's: refusing must not write through them.
    shared = shared_folder(tmp_path / "group", 0o755)
    side = JobSide(tmp_path, base=shared)
    shared.chmod(0o777)
    victims = tmp_path / "victims-file"
    victims.write_text("precious\n")
    chain = side.chain.path.relative_to(shared / "state")
    last = int(Path("/proc/sys/kernel/ns_last_pid").read_text())

    def swap() -> None:
        os.rename(shared / "state", shared / "state.victim")
        shutil.copytree(shared / "state.victim", shared / "state", symlinks=True)
        for pid in range(last + 1, last + 3000):
            os.symlink(victims, shared / "state" / chain / f".ended.100.{pid}")

    as_attacker_with_access(side, swap)
    link = side.run("100", 0)
    assert "refusing to run" in link.stderr
    assert victims.read_text() == "precious\n", "the refusal wrote the victim's file"


def test_a_state_directory_that_is_your_own_symbolic_link_is_used(tmp_path: Path) -> None:
    # ~/.longrun -> /scratch/$USER/longrun: your own link, followed on both sides.
    real = tmp_path / "scratch" / "longrun"
    real.mkdir(parents=True, mode=0o700)
    base = tmp_path / "home"
    base.mkdir(mode=0o700)
    (base / "state").symlink_to(real)
    StateDir(base / "state").ensure()
    side = JobSide(tmp_path, base=base)
    assert side.run("100", 0).returncode == 0
    assert side.bodies_run() == ["100"]


def test_a_dot_dot_after_a_symbolic_link_is_checked_where_the_kernel_goes(tmp_path: Path) -> None:
    # home/link -> shared/sub: home/link/../state is shared/state, in a folder open to all.
    shared = shared_folder(tmp_path / "shared", 0o777)
    (shared / "sub").mkdir()
    home = tmp_path / "home"
    home.mkdir()
    (home / "link").symlink_to(shared / "sub")
    with pytest.raises(StateError, match="writable by other users"):
        check_trusted_path(home / "link" / ".." / "state")


def test_parents_made_for_a_new_state_directory_are_private_under_umask_002(
    tmp_path: Path,
) -> None:
    old = os.umask(0o002)
    try:
        StateDir(tmp_path / "scratch" / "me" / "state").ensure()
        StateDir(tmp_path / "scratch" / "me" / "state").ensure()  # accepted again
    finally:
        os.umask(old)
    for path in (tmp_path / "scratch", tmp_path / "scratch" / "me"):
        assert path.stat().st_mode & 0o777 == 0o700, path


def test_the_successor_is_submitted_with_your_umask(side: JobSide) -> None:
    # sbatch passes its umask on to the job (SLURM_UMASK): the next link's output files and
    # its script's umask come from it, not from longrun's own 077.
    side.on_call("sbatch", f"umask >>{shquote(side.tmp / 'sbatch-umask')}")
    side.body_exits(75)
    side.run("100", 0, umask=0o002)
    assert (side.tmp / "sbatch-umask").read_text().split() == ["0002"]
    assert len(side.submitted()) == 1


def test_the_library_check_does_not_run_a_sha256sum_found_through_a_relative_path(
    side: JobSide,
) -> None:
    workdir = side.tmp / "shared-workdir"
    marker = side.tmp / "pwned"
    stand_ins(workdir, sha256sum=f"id -u >{shquote(marker)}; exec /usr/bin/sha256sum")
    side.run("100", 0, path=f".:{side.bin}:/usr/bin:/bin", cwd=workdir)
    assert side.bodies_run() == ["100"]
    assert not marker.exists(), "a sha256sum planted in the working directory ran"


def test_a_planted_sbatch_in_the_working_directory_does_not_hide_slurms_own(
    side: JobSide,
) -> None:
    # The job's PATH has '.' and not Slurm's folder (longrun adds the one sbatch_longrun used).
    workdir = side.tmp / "shared-workdir"
    stand_ins(workdir, sbatch=f"touch {shquote(side.tmp / 'pwned')}")
    side.body_exits(75)
    side.run("100", 0, path=f".:{system_without_slurm(side.tmp)}", cwd=workdir)
    assert len(side.submitted()) == 1, "no successor: sbatch was looked up through '.'"
    assert not (side.tmp / "pwned").exists()


def test_a_folder_that_becomes_unsafe_while_a_link_runs_gets_no_successor(
    tmp_path: Path,
) -> None:
    base = tmp_path / "work"
    base.mkdir()
    side = JobSide(tmp_path, base=base)
    # The script runs; meanwhile the folder above the state directory opens to everyone; at
    # the pre-timeout check the successor is missing: the link must not submit from there.
    side.body_runs(f"chmod 0777 {shquote(base)}")
    side.signal_during_body()
    side.body_exits(75)
    side.run("100", 0)
    assert len(side.submitted()) == 1, "a successor was submitted from an unsafe folder"
    failed = side.events("successor_failed")
    assert failed and "writable by other users" in failed[0]["error"]


def test_the_watchers_repair_never_runs_sbatch_from_the_snapshots_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An attacker who could write the snapshot (env) points PATH at a folder of theirs.
    evil = stand_ins(tmp_path / "evil", sbatch=f"touch {shquote(tmp_path / 'pwned')}; echo 666")
    own = stand_ins(tmp_path / "own", sbatch="echo 555")
    monkeypatch.setenv("PATH", f"{own}:{os.environ['PATH']}")
    result = slurm.run(["sbatch", "--parsable", "x"], env={"PATH": str(evil)})
    assert result.stdout.strip() == "555"
    assert not (tmp_path / "pwned").exists()
    # Nor from a relative folder of the caller's own PATH (".": wherever longrun runs).
    monkeypatch.chdir(evil)
    monkeypatch.setenv("PATH", f".:{own}:{os.environ['PATH']}")
    assert slurm.run(["sbatch"]).stdout.strip() == "555"


def test_files_read_through_the_held_folder_come_from_the_folder_that_was_checked(
    tmp_path: Path,
) -> None:
    folder, _ = ended_chain(tmp_path)
    folder.write_env({"PATH": "/usr/bin:/bin"})
    with folder.held() as handle:
        # Swapped after the check: another folder (here: the same user's, made loose) in place.
        os.rename(folder.path, tmp_path / "moved")
        shutil.copytree(tmp_path / "moved", folder.path)
        ChainFolder(folder.path).write_env({"PATH": str(tmp_path / "evil")})
        assert folder.read_env(handle) == {"PATH": "/usr/bin:/bin"}
        assert folder.read_meta(handle).chain_id == folder.chain_id
    folder.path.chmod(0o755)
    with pytest.raises(StateError, match="loose permissions"), folder.held():
        pass


# --- 3. One repair per link, whatever the folder says ----------------------------------------
def test_a_chain_that_always_looks_broken_is_not_repaired_without_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A script named `claim` made every successor lose its claim: the chain kept looking
    # stalled, and the watcher submitted a new successor at every look (9 jobs in 60 s).
    watched = watched_stall(tmp_path, monkeypatch)
    folder, last = watched.folder, watched.last
    watched.check()
    assert len(watched.slurm.submitted) == 1
    # The repaired successor starts and finds the claim taken: the chain looks stalled again.
    folder.append_event("link_started", job="901", restart_count=1, previous=last)
    folder.append_event("claim_lost", job="901", previous=last, owner="unknown")
    watched.slurm.queue["901"] = "COMPLETED"
    for _ in range(5):
        watched.check()
    assert len(watched.slurm.submitted) == 1
    # Another watcher, later: the chain's record refuses too.
    with pytest.raises(RepairRefused, match="job 901, queued by a repair, started"):
        chain_actions.repair(folder, watched.state)
    assert len(watched.slurm.submitted) == 1
    # Said once, as an event (the watcher prints it), and `longrun status` tells why.
    refusals = [e for e in folder.read_events() if e["event"] == "repair_refused"]
    assert [e["job"] for e in refusals] == [last]
    view = chain_reading.live_view(folder, ask_slurm=False)
    assert view.state == "STALLED" and "is not repaired again" in view.reason


# --- 5. Writes never follow a symbolic link put in the chain folder --------------------------
def test_planted_temporary_file_links_do_not_redirect_longruns_writes(tmp_path: Path) -> None:
    folder, _ = ended_chain(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    host, pid = os.uname().nodename, os.getpid()
    for name in (f".view.json.{host}.{pid}.tmp", f".chain.json.{pid}.tmp"):
        (folder.path / name).symlink_to(outside)
    keep(folder, "view.json", {"links": []}, {})  # the kept view, through its temporary file
    write_atomic(folder.meta_file, folder.meta_file.read_text())
    assert outside.read_text() == "precious\n"
    assert (folder.path / "view.json").is_file() and not (folder.path / "view.json").is_symlink()
    # An event file that is a link: refused with a message, not written through.
    own = folder.own_events_file
    own.parent.mkdir(exist_ok=True)
    own.unlink(missing_ok=True)
    own.symlink_to(outside)
    with pytest.raises(StateError, match="cannot write"):
        folder.append_event("submitting", command="x")
    assert outside.read_text() == "precious\n"


def test_the_job_sides_writes_do_not_follow_a_planted_link(tmp_path: Path) -> None:
    helpers = helpers_of(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    target = tmp_path / "verdict"
    code = f"ln -s {shquote(outside)} {shquote(target)}.tmp.$$; lr_write {shquote(target)} done"
    run_bash(helpers, code)
    assert outside.read_text() == "precious\n"
    assert target.read_text() == "done\n" and not target.is_symlink()


# --- 6. Input that plain sbatch would not execute is not executed -------------------------------
def test_a_header_line_that_bash_would_run_stays_a_comment(tmp_path: Path) -> None:
    # sbatch skips C's blanks (\f, \v) before '#': a comment to sbatch, a command to bash.
    marker = tmp_path / "pwned"
    for blank in ("\f", "\v", "\r"):
        script = f"#!/usr/bin/env python3\n#SBATCH -t 5\n{blank}# $(touch {marker})\nprint(1)\n"
        plan = plan_of(script, [], where=chain_location(tmp_path, "/usr/bin"))
        text = render_link_script(plan)
        header = text[: text.index("# >>> longrun")]
        assert f"#{blank}# $(touch {marker})" in header
        run_bash_text(header, tmp_path)
        assert not marker.exists(), f"a header line starting with {blank!r} ran"


def test_a_line_python_calls_blank_but_sbatch_does_not_ends_the_header() -> None:
    # \x1c is whitespace to Python's str.strip, not to sbatch: sbatch reads no #SBATCH after it.
    from longrun.batch_script import header_end

    lines = ["#!/bin/bash", "\x1c# x", "#SBATCH -t 5"]
    assert header_end(lines) == 1


def test_an_environment_name_that_env_would_take_as_an_option_is_not_passed(
    tmp_path: Path,
) -> None:
    helpers = helpers_of(tmp_path)
    snapshot = tmp_path / "snapshot"
    snapshot.write_bytes(b"-S/bin/touch /tmp/x=1\0PATH=/usr/bin\0KEEP=1\0")
    code = (
        f"LR_ENV_FILE={shquote(snapshot)} LONGRUN_EXPORT_MODE=list "
        "LONGRUN_EXPORT_NAMES=('-S/bin/touch /tmp/x' KEEP); lr_load_env; "
        "printf '%s\\n' \"${LR_ENV[@]}\""
    )
    assert run_bash(helpers, code).splitlines() == ["PATH=/usr/bin", "KEEP=1"]


def test_the_streak_file_is_read_as_a_number(tmp_path: Path) -> None:
    helpers = helpers_of(tmp_path)
    marker = tmp_path / "pwned"
    links = tmp_path / "links"
    (links / "99").mkdir(parents=True)
    (links / "99" / "streak").write_text(f"x[$(touch {marker})]\n")
    (links / "100").mkdir()
    code = (
        f"LR_LINKS_DIR={shquote(links)} LR_PREVIOUS=99 LR_LINK_DIR={shquote(links / '100')} "
        "LR_T0=$SECONDS LR_SUCCESSOR=''; lr_backoff; cat \"$LR_LINK_DIR/streak\""
    )
    assert run_bash(helpers, code) == "1\n"
    assert not marker.exists()


# --- 7. The job side's files are private under any umask ---------------------------------------
def test_the_job_sides_files_are_private_under_umask_000(side: JobSide) -> None:
    side.body_runs(f"umask >{shquote(side.tmp / 'body-umask')}")
    side.run("100", 0, umask=0)
    link = side.chain.link_dir("100")
    for path in (link, link / "events.jsonl", link / "successor", link / "verdict"):
        mode = path.stat().st_mode & 0o777
        assert not mode & 0o077, f"{path.name} is {mode:04o} under umask 000"
    # Your script keeps the umask it started with, as with plain sbatch.
    assert (side.tmp / "body-umask").read_text().strip() == "0000"


# --- 8. Relative PATH entries, the library check's early write ------------------------------
def test_slurm_commands_are_not_found_through_a_relative_path_entry(side: JobSide) -> None:
    workdir = side.tmp / "shared-workdir"
    stand_ins(workdir, sbatch=f"touch {shquote(side.tmp / 'pwned')}; echo 666")
    side.body_runs(f'printf "%s" "$PATH" >{shquote(side.tmp / "body-path")}')
    path = f".:{side.bin}:/usr/bin:/bin"
    side.run("100", 0, path=path, cwd=workdir)
    assert not (side.tmp / "pwned").exists(), "sbatch was found in the job's working directory"
    assert len(side.submitted()) == 1
    assert (side.tmp / "body-path").read_text() == path  # your script's PATH is unchanged


def test_a_failed_library_check_writes_nothing_into_a_folder_of_another_user(
    tmp_path: Path,
) -> None:
    side = JobSide(tmp_path)
    side.chain.library_file.chmod(0o600)
    side.chain.library_file.write_text("# altered\n")
    uid, gid = attacker_ids()
    os.chown(side.chain.path, uid, gid)  # not the victim's folder: nothing may be written
    link = side.run("100", 0)
    assert link.returncode == 1 and "is missing or altered" in link.stderr
    assert [p.name for p in side.chain.path.iterdir() if p.name.startswith(".")] == []
    assert side.chain.ended() is None


# --- helpers ------------------------------------------------------------------------------------
def system_without_slurm(tmp_path: Path) -> Path:
    """A folder of the system's commands (/usr/bin, /bin) without Slurm's: a job's PATH on
    a node whose Slurm lives elsewhere."""
    folder = tmp_path / "system-bin"
    folder.mkdir()
    for source in (Path("/bin"), Path("/usr/bin")):
        for command in source.iterdir():
            target = folder / command.name
            if command.name not in SLURM_COMMANDS and not target.exists():
                target.symlink_to(command)
    return folder


def wait_for_exit(pid: int, seconds: float = 30) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.1)
    os.kill(pid, 9)
    pytest.fail("the detached watcher did not end")


def as_attacker_with_access(side: JobSide, action: Any) -> None:
    """The attacker can enter the folders on the way (pytest's are root's, mode 0700)."""
    let_attacker_in(side.tmp)
    for path in side.chain.path.parent.parent.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o055)
        elif path.is_file():
            path.chmod(path.stat().st_mode | 0o044)
    side.chain.path.parent.parent.chmod(0o755)
    as_attacker(action)


def helpers_of(tmp_path: Path) -> Path:
    """The link script's settings and the library, to call single functions of the job side."""
    where = chain_location(tmp_path, "/usr/bin")
    text = render_link_script(plan_of("#!/bin/bash\necho hi\n", [], where=where))
    path = tmp_path / "helpers.sh"
    path.write_text(text[: text.index("\n# --- the helper library")] + "\n" + render_library())
    return path


def run_bash(helpers: Path, code: str) -> str:
    result = subprocess.run(
        ["bash", "-c", f"source {shquote(helpers)}\n{code}"],
        capture_output=True, text=True, check=False, timeout=30,
        env={"PATH": "/usr/bin:/bin", "SLURM_JOB_ID": "99"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def run_bash_text(text: str, cwd: Path) -> None:
    subprocess.run(["bash", "-c", text], cwd=cwd, capture_output=True, check=False, timeout=30)
