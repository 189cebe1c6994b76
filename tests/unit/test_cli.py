"""The command line without Slurm: help, version, usage errors, --dry-run, and what is written.

Where a test needs `sbatch` on PATH, a stand-in records that it was called: these tests prove
that nothing is submitted on bad input, never that a chain works (tests/e2e does that).
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import pwd
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from longrun import __version__, render
from longrun.cli import main, sbatch_longrun_main
from longrun.render import render_library
from slurmguard import guarded_path, stand_ins

SCRIPT = "#!/bin/bash\n#SBATCH --time=5\necho hello\n"
OTHER_USER = "nobody"


@pytest.fixture
def other_user_dir() -> Iterator[Path]:
    """A folder the unprivileged user can work in (pytest's own tmp folders are root's)."""
    path = Path(tempfile.mkdtemp(prefix="longrun-test-"))
    if os.getuid() == 0:
        entry = pwd.getpwnam(OTHER_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


DATA = Path(__file__).parent / "data"


def as_other_user(function: Callable[[], tuple[int, str]]) -> tuple[int, str]:
    """Run `function` as an unprivileged user: root reads and writes everything.

    As root, a forked child drops to `nobody` after everything is imported (nobody could not
    start this Python, which lives under /root); otherwise we are unprivileged already.
    """
    if os.getuid() != 0:
        return function()
    entry = pwd.getpwnam(OTHER_USER)
    # The command line imports these only when it needs them (loguru: to write a message).
    for module in ("longrun.submission", "longrun.watcher", "longrun.verify", "loguru"):
        importlib.import_module(module)
    # The installed templates may lie where nobody cannot go (a checkout in a mode-700 home):
    # the child reads a copy in a folder of its own.
    reachable = Path(tempfile.mkdtemp(prefix="longrun-templates-"))
    shutil.copytree(render.templates_dir(), reachable / "templates")
    for path in (reachable, *reachable.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read)
            render.PACKAGE_TEMPLATES = reachable / "templates"
            render._environment.cache_clear()
            os.setgroups([])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            payload = pickle.dumps(("ok", function()))
        except BaseException as exc:
            payload = pickle.dumps(("error", repr(exc)))
        with os.fdopen(write, "wb") as handle:
            handle.write(payload)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as handle:
        data = handle.read()
    os.waitpid(pid, 0)
    shutil.rmtree(reachable, ignore_errors=True)
    kind, value = pickle.loads(data)
    assert kind == "ok", f"the test failed as {OTHER_USER}: {value}"
    return value


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.sh").write_text(SCRIPT)
    return tmp_path


def recording_sbatch(tmp_path: Path) -> Path:
    """A bin directory whose `sbatch` only records its call (proof that nothing was submitted),
    beside the look-ups a submission makes: no federation, and one node, this host."""
    return stand_ins(
        tmp_path / "bin",
        sbatch=f'echo "$@" >> {tmp_path}/sbatch-called\necho 4242',
        scontrol='[ "$1 $2" = "show federation" ] && exit 0\necho "scontrol: $*" >&2; exit 1',
        sinfo=f"echo {socket.gethostname()}",
        squeue="exit 0",  # Slurm no longer knows the chain's jobs
    )


def submit(args: Sequence[str], env: dict[str, str] | None = None, input: str = "") -> Result:
    runner = CliRunner()
    return runner.invoke(sbatch_longrun_main, list(args), env=env, input=input)


def longrun(args: Sequence[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def nothing_written(workdir: Path) -> None:
    assert not (workdir / "state").exists(), "a state folder was written"
    assert not (workdir / "sbatch-called").exists(), "sbatch was called"


def test_version_and_help(tmp_path: Path) -> None:
    bin_dir = stand_ins(tmp_path / "bin", sbatch=f"cat {DATA / 'sbatch_version.txt'}")
    env = {"PATH": f"{bin_dir}:{guarded_path()}"}
    assert (
        longrun(["--version"], env=env).output
        == f"longrun, version {__version__} (Slurm 22.05.8)\n"
    )
    # Without a configuration, Slurm 24.11's sbatch fails even for --version: asked again with
    # one that only names a cluster, it tells.
    stand_ins(
        bin_dir,
        sbatch='grep -q ClusterName "${SLURM_CONF:-/nonexistent}" 2>/dev/null'
        " || { echo 'sbatch: fatal: Could not establish a configuration source' >&2; exit 1; }\n"
        "echo 'slurm-wlm 24.11.5'",
    )
    assert longrun(["--version"], env=env).output.endswith("(Slurm 24.11.5)\n")
    stand_ins(bin_dir, sbatch="echo 'sbatch: fatal: no' >&2; exit 1")
    assert longrun(["--version"], env=env).output.endswith("(Slurm version unknown)\n")
    said = submit(["--version"], env={"PATH": str(tmp_path / "none")}).output
    assert said.startswith(f"sbatch_longrun, version {__version__} (Slurm not found: sbatch")
    for args in (["--help"], ["submit", "--help"], ["status", "--help"]):
        result = longrun(args)
        assert result.exit_code == 0 and "Usage:" in result.output
    result = submit(["--help"])
    assert result.exit_code == 0
    for option in ("--max-restarts", "--use-verbosity", "--detached", "--no-watch", "--dry-run"):
        assert option in result.output


def test_dry_run_prints_the_link_script_and_the_command_and_writes_nothing(workdir: Path) -> None:
    result = submit(["--dry-run", "--state-dir", "state", "-p", "main", "job.sh", "a b"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("#!/bin/bash\n#SBATCH --time=5\n")
    assert "LONGRUN_SCRIPT_ARGS=( 'a b' )" in result.output
    assert (
        "# sbatch command of the first link:\n# sbatch --parsable --job-name=job.sh -p main "
        in (result.output)
    )
    nothing_written(workdir)


def test_wrapper_option_after_the_script_is_a_script_argument(workdir: Path) -> None:
    result = submit(["--dry-run", "job.sh", "--max-restarts", "3"])
    assert "LONGRUN_SCRIPT_ARGS=( --max-restarts 3 )" in result.output
    assert "LONGRUN_MAX_RESTARTS=999" in result.output


def test_wrapper_options_stop_at_the_first_sbatch_option(workdir: Path) -> None:
    result = submit(["--max-restarts", "2", "-J", "x", "--dry-run", "job.sh"])
    # --dry-run after -J belongs to sbatch, which does not know it.
    assert result.exit_code == 2
    assert "unrecognized sbatch option '--dry-run'" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-restarts", "-1", "job.sh"], "--max-restarts"),
        (["--retry-failed", "abc", "job.sh"], "--retry-failed"),
        (["--use-verbosity", "LOUD", "job.sh"], "--use-verbosity"),
        (["missing.sh"], "script 'missing.sh' does not exist"),
        (["."], "is a directory"),
        (["--array=1-x", "job.sh"], "--array=1-x: sbatch: error: Batch job submission failed"),
        (["--wrap=true", "job.sh"], "a script argument is not permitted with --wrap"),
        (["-J"], "requires an argument"),
        (["--bogus", "job.sh"], "unrecognized sbatch option '--bogus'"),
        ([], "empty"),
        (["--notify", "./missing.sh", "job.sh"], "'./missing.sh' is not an executable file"),
        (["--notify", "no-such-notifier", "job.sh"], "is not an executable file on your PATH"),
        (["--notify", "./job.sh 'x", "job.sh"], "No closing quotation"),
        (["--notify", " ", "job.sh"], "--notify needs a command"),
        (["--notify-url", "ftp://host/x", "job.sh"], "is not an http:// or https:// address"),
        (["--notify-url", "-K/etc/passwd", "job.sh"], "is not an http:// or https:// address"),
        (["--notify-on", "often", "job.sh"], "--notify-on"),
        (["--progress-file", "", "job.sh"], "is not a file name"),
    ],
)
def test_usage_errors_exit_2_and_write_nothing(
    workdir: Path, args: list[str], message: str
) -> None:
    env = {"PATH": f"{recording_sbatch(workdir)}:{os.environ['PATH']}", "LONGRUN_HOME": "state"}
    result = submit(args, env=env)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    nothing_written(workdir)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"echo no shebang\n", "does not start with #!"),
        (b"#!/bin/bash\r\necho dos\r\n", "DOS line breaks"),
        (b"\x7fELF\x02\x01\x01\x00\x00", "binary"),
    ],
)
def test_scripts_sbatch_refuses_are_refused_with_their_path(
    workdir: Path, content: bytes, message: str
) -> None:
    (workdir / "bad script.sh").write_bytes(content)
    env = {"PATH": f"{recording_sbatch(workdir)}:{os.environ['PATH']}", "LONGRUN_HOME": "state"}
    result = submit(["bad script.sh"], env=env)
    assert result.exit_code == 2
    assert message in result.output and "bad script.sh" in result.output
    nothing_written(workdir)


def test_unreadable_script(other_user_dir: Path) -> None:
    def attempt() -> tuple[int, str]:
        os.chdir(other_user_dir)
        (other_user_dir / "job.sh").write_text(SCRIPT)
        (other_user_dir / "job.sh").chmod(0)
        result = submit(["job.sh"], env={"LONGRUN_HOME": "state"})
        return result.exit_code, result.output

    code, output = as_other_user(attempt)
    assert code == 2 and "script 'job.sh' is not readable" in output
    assert "ls -l job.sh" in output
    assert not (other_user_dir / "state").exists()


def test_sbatch_not_on_path_is_a_clear_error_and_nothing_is_written(workdir: Path) -> None:
    empty = workdir / "empty-bin"
    empty.mkdir()
    result = submit(["job.sh"], env={"PATH": str(empty), "LONGRUN_HOME": "state"})
    assert result.exit_code != 0
    assert "sbatch: command not found" in result.output
    assert "Slurm's commands must be on PATH" in result.output
    nothing_written(workdir)


def test_a_refused_submission_takes_back_only_what_it_made(workdir: Path) -> None:
    """Two submissions on a fresh state directory, the second refused by sbatch: its rollback
    removes its own chain folder, never the state directory with the first one's chain in it."""
    other_chain = workdir / "state" / "chains" / "20261130-120000-0000abcd"
    refusing = stand_ins(
        workdir / "bin",
        # The other submission makes its chain while ours waits for sbatch's answer.
        sbatch=f"mkdir -p {other_chain}\necho 'sbatch: error: invalid partition' >&2; exit 1",
        scontrol='[ "$1 $2" = "show federation" ] && exit 0\nexit 1',
        sinfo=f"echo {socket.gethostname()}",
    )
    env = {"PATH": f"{refusing}:{os.environ['PATH']}"}
    result = submit(["--no-watch", "--state-dir", "state", "job.sh"], env=env)
    assert result.exit_code == 1, result.output
    assert "nothing was submitted" in result.output
    assert other_chain.is_dir(), "the other submission's chain was removed"
    assert [p.name for p in (workdir / "state" / "chains").iterdir()] == [other_chain.name]


def test_state_directory_that_is_a_file(workdir: Path) -> None:
    (workdir / "state-file").write_text("")
    env = {"PATH": f"{recording_sbatch(workdir)}:{os.environ['PATH']}"}
    result = submit(["--state-dir", "state-file", "job.sh"], env=env)
    assert result.exit_code == 2
    assert "is not a directory" in result.output
    assert not (workdir / "sbatch-called").exists()


def test_state_directory_writable_by_others_is_refused(workdir: Path) -> None:
    state = workdir / "state"
    state.mkdir()
    state.chmod(0o777)
    env = {"PATH": f"{recording_sbatch(workdir)}:{os.environ['PATH']}"}
    result = submit(["--state-dir", "state", "job.sh"], env=env)
    assert result.exit_code == 2
    assert "writable by other users" in result.output and "chmod go-w" in result.output
    assert not (workdir / "sbatch-called").exists()
    assert list(state.iterdir()) == []


def submit_as_other_user(
    folder: Path, args: list[str], mkdir: str | None = None
) -> tuple[int, str]:
    """sbatch_longrun ARGS job.sh, run by the unprivileged user in `folder` (after mkdir)."""

    def attempt() -> tuple[int, str]:
        os.chdir(folder)
        (folder / "job.sh").write_text(SCRIPT)
        if mkdir:
            (folder / mkdir).mkdir(mode=0o500)
        env = {"PATH": f"{recording_sbatch(folder)}:{os.environ['PATH']}"}
        result = submit([*args, "job.sh"], env=env)
        return result.exit_code, result.output

    return as_other_user(attempt)


def test_state_directory_that_cannot_be_created(other_user_dir: Path) -> None:
    code, output = submit_as_other_user(other_user_dir, ["--state-dir", "ro/sub/state"], "ro")
    assert code == 2 and "cannot create state directory" in output
    assert not (other_user_dir / "sbatch-called").exists()


def test_state_directory_of_another_user_is_refused(other_user_dir: Path) -> None:
    if os.getuid() != 0:
        pytest.fail("this test needs root, to make a folder another user owns")
    state = other_user_dir / "state"
    state.mkdir(mode=0o755)
    os.chown(state, 0, 0)
    code, output = submit_as_other_user(other_user_dir, ["--state-dir", "state"])
    assert code == 2 and "belongs to another user (uid 0)" in output
    assert not (other_user_dir / "sbatch-called").exists()


def test_chain_folder_of_another_user_is_refused(other_user_dir: Path) -> None:
    # The state folder is the user's own, but one chain folder in it belongs to someone else.
    assert submit_as_other_user(other_user_dir, ["--no-watch", "--state-dir", "state"])[0] == 0
    chain = next((other_user_dir / "state" / "chains").iterdir())
    os.chown(chain, 0, 0)

    def show() -> tuple[int, str]:
        result = longrun(["show", "4242", "--state-dir", str(other_user_dir / "state")])
        return result.exit_code, result.output

    code, output = as_other_user(show)
    assert code == 2 and "belongs to another user (uid 0)" in output


def test_chain_folder_with_loose_permissions_is_refused(workdir: Path) -> None:
    env = {"PATH": f"{recording_sbatch(workdir)}:{os.environ['PATH']}", "LONGRUN_HOME": "state"}
    result = submit(["--no-watch", "job.sh"], env=env)
    assert result.exit_code == 0, result.output
    chain = next((workdir / "state" / "chains").iterdir())
    assert stat.S_IMODE(chain.stat().st_mode) == 0o700
    assert stat.S_IMODE((chain / "env").stat().st_mode) == 0o600
    chain.chmod(0o755)
    result = longrun(["show", "4242"], env=env)
    assert result.exit_code == 2
    assert "loose permissions" in result.output and "chmod 700" in result.output


def test_parsable_prints_only_the_job_id(workdir: Path) -> None:
    env = {"PATH": f"{recording_sbatch(workdir)}:{os.environ['PATH']}", "LONGRUN_HOME": "state"}
    runner = CliRunner()
    result = runner.invoke(sbatch_longrun_main, ["--no-watch", "--parsable", "job.sh"], env=env)
    assert result.exit_code == 0
    assert result.stdout == "4242\n"
    called = (workdir / "sbatch-called").read_text()
    assert "--parsable" in called and called.count("--parsable") == 1


def test_commands_on_chains_explain_a_missing_state_folder(workdir: Path) -> None:
    for args in (["status"], ["list"], ["show", "12"], ["cancel", "12"], ["watch", "12"]):
        result = longrun([*args, "--state-dir", "nowhere"])
        if args == ["list"]:
            assert result.exit_code == 0
            assert "does not exist" in result.output and "--state-dir" in result.output
            continue
        assert result.exit_code != 0, args
        assert "no state directory at" in result.output and "--state-dir" in result.output


def test_unknown_chain(workdir: Path) -> None:
    env = {"PATH": f"{recording_sbatch(workdir)}:{os.environ['PATH']}", "LONGRUN_HOME": "state"}
    assert submit(["--no-watch", "job.sh"], env=env).exit_code == 0
    result = longrun(["status", "777"], env=env)
    assert result.exit_code != 0
    assert "no chain '777'" in result.output and "longrun list" in result.output


def test_show_prints_the_link_script_or_the_original(workdir: Path) -> None:
    env = {"PATH": f"{recording_sbatch(workdir)}:{os.environ['PATH']}", "LONGRUN_HOME": "state"}
    assert submit(["--no-watch", "job.sh"], env=env).exit_code == 0
    chain_id = next((workdir / "state" / "chains").iterdir()).name
    for ref in ("4242", chain_id):
        shown = longrun(["show", ref], env=env)
        assert shown.exit_code == 0
        assert shown.output.startswith("#!/bin/bash\n#SBATCH --time=5\n")
        assert "# >>> longrun" in shown.output
    original = longrun(["show", "4242", "--original"], env=env)
    assert original.output == SCRIPT
    library = longrun(["show", "4242", "--library"], env=env)
    assert library.exit_code == 0 and library.output == render_library()
    assert "main() {" in library.output
    both = longrun(["show", "4242", "--library", "--original"], env=env)
    assert both.exit_code == 2 and "Give one of them" in both.output


def test_longrun_submit_is_sbatch_longrun(workdir: Path) -> None:
    args = ["--dry-run", "--max-restarts", "4", "-J", "same", "job.sh", "x"]
    direct = submit(args)
    via_longrun = longrun(["submit", *args])
    assert direct.exit_code == via_longrun.exit_code == 0

    def without_chain_id(text: str) -> str:
        return re.sub(r"\d{8}-\d{6}-[0-9a-f]{8}", "CHAIN", text)

    assert without_chain_id(direct.output) == without_chain_id(via_longrun.output)
    assert "LONGRUN_MAX_RESTARTS=4" in direct.output


def test_a_heterogeneous_job_gets_longruns_options_in_its_first_component(
    workdir: Path,
) -> None:
    (workdir / "het.sh").write_text(
        "#!/bin/bash\n#SBATCH -N1\n#SBATCH hetjob\n#SBATCH -N2\nhostname\n"
    )
    result = submit(["--dry-run", "-p", "multi", "-J", "a", ":", "-p", "multi", "het.sh"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    command = lines[lines.index("# sbatch command of the first link:") + 1]
    words = shlex.split(command[2:])
    first, rest = words[: words.index(":")], words[words.index(":") :]
    # Before the first `:`: longrun's own (signal, open mode, the tag) with the first
    # component's options; the other component keeps its own.
    assert "--signal=B:USR1@120" in first and "--open-mode=append" in first
    assert any(w.startswith("--comment=longrun:") for w in first)
    assert rest[:3] == [":", "-p", "multi"]
    # No generated #SBATCH line: after the header it would belong to the last component.
    assert "#SBATCH --signal" not in result.output
    nothing_written(workdir)


def test_no_command_prints_the_environment_snapshot(workdir: Path) -> None:
    secret = "s3cr3t-token-value"
    env = {
        "PATH": f"{recording_sbatch(workdir)}:{os.environ['PATH']}",
        "LONGRUN_HOME": "state",
        "API_TOKEN": secret,
    }
    outputs = [submit(["--no-watch", "job.sh"], env=env).output]
    outputs.append(submit(["--dry-run", "job.sh"], env=env).output)
    for args in (["show", "4242"], ["show", "4242", "--original"], ["list"], ["list", "--json"]):
        outputs.append(longrun(args, env=env).output)
    assert all(secret not in output for output in outputs)
    chain = next((workdir / "state" / "chains").iterdir())
    snapshot = chain / "env"
    assert secret in snapshot.read_text()  # it is kept, for the successors, and only there
    assert stat.S_IMODE(snapshot.stat().st_mode) == 0o600
    assert secret not in (chain / "link.sh").read_text()
    assert secret not in (chain / "chain.json").read_text()


@pytest.mark.parametrize("command", [["list"], ["status", "1"], ["show", "1", "--library"]])
def test_commands_that_read_chains_import_neither_jinja2_nor_loguru(
    tmp_path: Path, command: list[str]
) -> None:
    """They start fast: rendering and the planner are for submission only, loguru only loads
    to write a message."""
    recorded = Path(__file__).parent / "data" / "chains" / "three_links"
    chain_id = json.loads((recorded / "chain.json").read_text())["chain_id"]
    state = tmp_path / "state"
    folder = state / "chains" / chain_id
    shutil.copytree(recorded, folder)
    (folder / "library.sh").write_text("# the library\n")
    (state / "jobs").mkdir()
    (state / "jobs" / "1").write_text(chain_id + "\n")
    for path in (state, state / "chains", folder):
        path.chmod(0o700)
    program = f"""
import sys
from longrun.cli import main
try:
    main({[*command, "--state-dir", str(state)]!r})
except SystemExit as exc:
    print("exit", exc.code)
print(sorted(m for m in ("jinja2", "loguru", "longrun.render", "longrun.plan") if m in sys.modules))
"""
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False
    )
    lines = result.stdout.splitlines()
    assert lines[-2:] == ["exit 0", "[]"], result.stdout + result.stderr
    assert chain_id in result.stdout or lines[0] == "# the library", result.stdout
