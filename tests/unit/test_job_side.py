"""The link script's own bash helpers, run from a rendered script without Slurm.

The link script's settings and the helper library only assign variables and define functions, so
together they can be sourced and the helpers called one by one. Where a helper reads Slurm's
output, a stand-in `squeue` prints output captured from the real cluster (tests/unit/data): this
tests our parsing, not Slurm. Whether the chain works is proven on the real cluster in tests/e2e.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from longrun import states
from longrun.chain_store import ChainFolder
from longrun.render import render_library, render_link_script, shquote
from plantest import chain_location, plan_of
from slurmguard import guarded_path, stand_ins

DATA = Path(__file__).parent / "data"


def render_helpers(
    tmp_path: Path, argv: list[str] | None = None, environ: dict[str, str] | None = None
) -> Path:
    """A file that defines the link script's variables and functions, chain folder included."""
    where = chain_location(tmp_path, "/usr/bin")
    plan = plan_of("#!/bin/bash\necho hi\n", argv or [], where=where, environ=environ)
    text = render_link_script(plan)
    path = tmp_path / "helpers.sh"
    path.write_text(text[: text.index("\n# --- the helper library")] + "\n" + render_library())
    return path


@pytest.fixture
def helpers(tmp_path: Path) -> Path:
    return render_helpers(tmp_path)


def bash(helpers: Path, code: str, path_dir: Path | None = None) -> str:
    """Source the helpers and run `code`; return standard output."""
    prefix = f"PATH={shquote(path_dir)}:$PATH\n" if path_dir else ""
    result = subprocess.run(
        ["bash", "-c", f"{prefix}source {shquote(helpers)}\n{code}"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": guarded_path(), "SLURM_JOB_ID": "99"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def fake_command(tmp_path: Path, name: str, output: str) -> Path:
    """A directory whose `name` command prints captured output."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / f"{name}.out").write_text(output)
    return stand_ins(bin_dir, **{name: f"cat {shquote(bin_dir / f'{name}.out')}"})


def captured_lines(name: str) -> list[str]:
    return [line + "\n" for line in (DATA / name).read_text().splitlines() if line]


JOBS: dict[str, str] = json.loads((DATA / "jobs.json").read_text())


def job_records() -> dict[str, str]:
    """Each captured record of the link's own look at a job (`scontrol show job`), by job id."""
    records = {}
    for name in ("scontrol_job.txt", "scontrol_job_preempted.txt", "scontrol_job_ends.txt"):
        for record in (DATA / name).read_text().split("\n\n"):
            if record.strip():
                records[record.split()[0].removeprefix("JobId=")] = record + "\n\n"
    return records


# role in jobs.json: what the link must read (state, preempted, seconds left of the time limit)
LOOKS = {
    "running": ("RUNNING", "0", ""),  # its name and comment hold "JobState=COMPLETED"
    "pending": ("PENDING", "0", ""),
    "failed": ("FAILED", "0", ""),
    "completed": ("COMPLETED", "0", ""),
    "cancelled": ("CANCELLED", "0", ""),
    "preempted_step": ("FAILED", "1", ""),  # exited in its GraceTime: only PreemptTime tells
    "preempted_graced": ("RUNNING", "1", str(93780 - 3)),  # 1-02:03:00, 3 s in
    "timeout": ("RUNNING", "0", "0"),  # past its limit, not yet killed
    "node_fail": ("NODE_FAIL", "0", ""),
    "requeued": ("RUNNING", "0", ""),
}


def test_every_captured_record_has_an_expected_look() -> None:
    assert sorted(job_records()) == sorted(JOBS[role] for role in LOOKS)


@pytest.mark.parametrize("role", sorted(LOOKS))
def test_job_info_reads_state_preemption_time_left_start_and_end(
    helpers: Path, tmp_path: Path, role: str
) -> None:
    record = job_records()[JOBS[role]]
    out = bash(
        helpers,
        'lr_job_info 58 && printf \'%s|\' "$LR_STATE" "$LR_PREEMPTED" "$LR_TIME_LEFT"'
        ' "$LR_START" "$LR_END"',
        fake_command(tmp_path, "scontrol", record),
    )
    times = re.search(r"^   StartTime=(\S+) EndTime=(\S+) ", record, re.M)
    assert times is not None
    assert tuple(out.split("|")[:-1]) == (*LOOKS[role], times[1], times[2])


def test_job_info_fails_when_slurm_no_longer_knows_the_job(helpers: Path, tmp_path: Path) -> None:
    out = bash(helpers, "lr_job_info 58 || echo gone", fake_command(tmp_path, "scontrol", ""))
    assert out == "gone\n"


def test_sacct_reader_takes_the_last_record_of_a_requeued_job(
    helpers: Path, tmp_path: Path
) -> None:
    text = (DATA / "sacct_link_format_requeue.txt").read_text()
    last = text.strip().splitlines()[-1].split("|")
    out = bash(
        helpers,
        'lr_sacct_state 131 && printf \'%s|\' "$LR_STATE" "$LR_START" "$LR_END"',
        fake_command(tmp_path, "sacct", text),
    )
    assert out.split("|")[:-1] == ["CANCELLED", last[1], last[2]]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0:30", 30),
        ("5:00", 300),
        ("1:02:03", 3723),
        ("1-02:02:53", 93773),
        ("2-00:00:00", 172800),
        ("45", 2700),  # Slurm reads a bare number as minutes
        ("09:08", 548),
    ],
)
def test_slurm_durations_in_seconds(helpers: Path, text: str, seconds: int) -> None:
    assert bash(helpers, f"lr_secs {text} && echo $LR_SECS") == f"{seconds}\n"


@pytest.mark.parametrize("text", ["UNLIMITED", "INVALID", "N/A", ""])
def test_durations_that_are_not_times(helpers: Path, text: str) -> None:
    assert bash(helpers, f"lr_secs {shquote(text)} || echo none") == "none\n"


def test_the_rendered_rule_table_decides_as_python_does(helpers: Path) -> None:
    verdicts = ["", *states.VERDICTS, "garbage"]
    slurm_states = ["", *states.FINAL_STATES, "RUNNING", states.NO_ANSWER]
    combos = list(itertools.product(verdicts, slurm_states, (False, True)))
    code = "\n".join(
        f'lr_rule_outcome {shquote(v)} {shquote(s)} {int(p)}; echo "$LR_OUTCOME|$LR_WHY"'
        for v, s, p in combos
    )
    lines = bash(helpers, code).splitlines()
    assert len(lines) == len(combos)
    for (verdict, state, preempted), line in zip(combos, lines):
        rule = states.judge(verdict, state, preempted)
        assert line == f"{rule.outcome}|{rule.why}", (verdict, state, preempted)


def test_events_are_valid_json_whatever_the_text(helpers: Path, tmp_path: Path) -> None:
    nasty = 'quote " backslash \\ newline \n tab \t bell \a $(touch CANARY) é'
    code = f"lr_event successor_failed error {shquote(nasty)} exit_code 1"
    bash(
        helpers,
        f"LR_RESTART_COUNT=2; LR_LINK_DIR=$LONGRUN_CHAIN_DIR/links/99\n"
        f'mkdir -p "$LR_LINK_DIR"; {code}',
    )
    chain = tmp_path / "state" / "chains" / "20261125-120000-abcd"
    events = ChainFolder(chain).read_events()
    assert len(events) == 1
    event = events[0]
    assert (event["event"], event["job"], event["restart_count"], event["exit_code"]) == (
        "successor_failed", "99", 2, "1",
    )  # fmt: skip
    assert event["error"] == nasty.replace("\a", "?")
    assert not list(tmp_path.rglob("CANARY"))
    json.dumps(event)


@pytest.mark.parametrize(
    ("argv", "expected", "export_file"),
    [
        # ALL (the default): sbatch gets its own variables; the job's come from the file.
        ([], ["PATH=/usr/bin:/bin", "SBATCH_ACCOUNT=a b"], True),
        # A list of names: those names too, in sbatch's environment; no file.
        (
            ["--export=MULTI,EQUALS,X=1"],
            [
                "EQUALS=a=b=c",
                "MULTI=line1\nline2 $(touch CANARY)",
                "PATH=/usr/bin:/bin",
                "SBATCH_ACCOUNT=a b",
            ],
            False,
        ),
        (["--export=NONE"], ["PATH=/usr/bin:/bin", "SBATCH_ACCOUNT=a b"], False),
    ],
)
def test_sbatch_of_the_next_link_gets_its_environment_as_export_says(
    tmp_path: Path, argv: list[str], expected: list[str], export_file: bool
) -> None:
    helpers = render_helpers(tmp_path, argv)
    chain = ChainFolder(tmp_path / "state" / "chains" / "20261125-120000-abcd")
    environ = {
        "PATH": "/usr/bin:/bin",
        "SBATCH_ACCOUNT": "a b",
        "MULTI": "line1\nline2 $(touch CANARY)",
        "EQUALS": "a=b=c",
        "BASH_FUNC_module%%": "() {  echo module\n}",
    }
    chain.write_env(environ)
    out = bash(
        helpers,
        'unset SLURM_CONF; lr_load_env; printf \'%s\\0\' "${LR_ENV[@]}" "${LR_EXPORT_ARGS[@]}"',
    )
    entries = out.split("\0")[:-1]
    file_arg = f"--export-file={chain.env_file}"
    assert entries == [*expected, *([file_arg] if export_file else [])]
    assert not list(tmp_path.rglob("CANARY"))


def test_the_snapshot_keeps_every_entry_sbatch_passes_on(tmp_path: Path) -> None:
    chain = ChainFolder(tmp_path)
    environ = {"BASH_FUNC_ml%%": '() {  module ml "$@"\n}', "A": "x\ny", "B": "=", "C": ""}
    chain.write_env(environ)
    assert chain.read_env() == environ


CATCHER = "import signal, time; signal.signal(signal.SIGUSR1, lambda *a: None); time.sleep(30)"


@pytest.mark.parametrize(
    ("script", "who", "programs"),
    [
        # The script traps USR1 itself: only the script gets it, as with plain sbatch.
        (f"trap 'echo got' USR1; python3 -c '{CATCHER}' & wait", "script", ["python"]),
        # It does not: the descendant that catches it gets it (like srun), never the script.
        (f"sleep 30 & python3 -c '{CATCHER}' & wait", "catcher", ["python", "sleep"]),
        # Nobody catches it: nobody is signalled (plain sbatch would kill the script).
        ("sleep 30 & bash -c 'sleep 30 & wait' & wait", "nobody", ["bash", "sleep", "sleep"]),
    ],
)
def test_the_signal_goes_to_the_topmost_processes_that_catch_it(
    helpers: Path, script: str, who: str, programs: list[str]
) -> None:
    tree = subprocess.Popen(["bash", "-c", script], start_new_session=True)
    try:
        # Every process of the tree has started its program: a shell's child that has not yet
        # run exec blocks signals for a moment, which reads as catching them.
        running = wait_for_tree(tree.pid, programs)
        catcher = [pid for pid, program in running.items() if program == "python"]
        if catcher:
            wait_for_handler(catcher[0], signal.SIGUSR1)
        if who == "script":
            wait_for_handler(tree.pid, signal.SIGUSR1)
        out = bash(helpers, f"lr_catchers {tree.pid} USR1; echo ${{LR_TARGETS[@]}}")
        expected = {"script": [tree.pid], "catcher": catcher, "nobody": []}[who]
        assert list(map(int, out.split())) == expected
    finally:
        os.killpg(tree.pid, signal.SIGKILL)  # its own process group (start_new_session)
        tree.wait()


def wait_for_tree(pid: int, programs: list[str]) -> dict[int, str]:
    """The descendants of pid (pid -> program, `python` for any python) once their programs
    are exactly `programs` (polled with a deadline)."""
    deadline = time.monotonic() + 10
    found: dict[int, str] = {}
    while time.monotonic() < deadline:
        found = {}
        for child in descendants(pid):
            try:
                argv0 = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0]
            except (FileNotFoundError, ProcessLookupError):  # a shell that forked it, gone again
                continue
            name = Path(argv0.decode()).name
            found[child] = "python" if name.startswith("python") else name
        if sorted(found.values()) == sorted(programs):
            return found
        time.sleep(0.05)
    raise AssertionError(f"the process tree never ran {programs} (last: {found})")


def wait_for_handler(pid: int, signum: int) -> None:
    """Wait until the process has installed a handler for the signal (SigCgt)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:") and (int(line.split()[1], 16) >> (signum - 1)) & 1:
                return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} installed no handler for signal {signum}")


def descendants(pid: int) -> list[int]:
    """The descendants of pid, as /proc shows them now."""
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children_file = Path(f"/proc/{parent}/task/{parent}/children")
        try:
            children = [int(c) for c in children_file.read_text().split()]
        except (FileNotFoundError, ProcessLookupError):  # it has just exited (ESRCH: dying)
            continue
        found.extend(children)
        frontier.extend(children)
    return found


def test_step_signal_window_only_on_a_long_enough_time_limit(tmp_path: Path) -> None:
    # --signal=USR1@50 without B:: a window of 50 + 60 s before the limit.
    helpers = render_helpers(tmp_path, ["--signal=USR1@50"])
    check = "lr_in_step_signal_window && echo in || echo out"
    # An hour-long link with 100 s left: an exit 0 now may be a checkpoint on the signal.
    assert bash(helpers, f"SECONDS=3500; LR_TIME_LEFT=100; {check}") == "in\n"
    assert bash(helpers, f"SECONDS=3000; LR_TIME_LEFT=600; {check}") == "out\n"
    # A one-minute link is all window: an exit 0 there is taken as finished.
    assert bash(helpers, f"SECONDS=30; LR_TIME_LEFT=30; {check}") == "out\n"
    # No time limit: no window.
    assert bash(helpers, f"SECONDS=3500; LR_TIME_LEFT=''; {check}") == "out\n"
    assert bash(render_helpers(tmp_path), f"SECONDS=3500; LR_TIME_LEFT=100; {check}") == "out\n"


def failing_sbatch(tmp_path: Path, failures: int) -> Path:
    """A stand-in sbatch that fails `failures` times, then prints a job id, and a squeue that
    shows no job (so no failed call had queued one after all).

    Call N leaves its arguments in call-N.args and its environment in call-N.env (NUL-separated).
    """
    bin_dir = fake_command(tmp_path, "squeue", "")
    sbatch = bin_dir / "sbatch"
    calls = shquote(tmp_path / "call")
    sbatch.write_text(
        "#!/bin/bash\n"
        f"n=$(ls {calls}-*.args 2>/dev/null | wc -l)\n"
        f"printf '%s\\0' \"$@\" > {calls}-$n.args\n"
        f"env -0 > {calls}-$n.env\n"
        f"if [ $n -lt {failures} ]; then\n"
        "  echo 'sbatch: error: Batch job submission failed: Socket timed out' >&2; exit 1\n"
        "fi\necho 777\n"
    )
    sbatch.chmod(0o755)
    return bin_dir


def nul_list(path: Path) -> list[str]:
    return path.read_text().split("\0")[:-1]


SUBMIT = """\
LR_RESTART_COUNT=0 LR_INITIAL=99 LR_RETRIES=0 LR_LABEL='link 1/1000'
LR_LINK_DIR=$LONGRUN_CHAIN_DIR/links/99; mkdir -p "$LR_LINK_DIR"
export NOT_IN_SNAPSHOT=leak SLURM_CPUS_PER_TASK=4
lr_submit_successor && echo "successor=$LR_SUCCESSOR" || echo failed
"""


def test_successor_is_submitted_with_the_snapshot_environment_after_a_transient_failure(
    tmp_path: Path,
) -> None:
    helpers = render_helpers(tmp_path, ["-p", "main", "--dependency=afterok:5"])
    chain = ChainFolder(tmp_path / "state" / "chains" / "20261125-120000-abcd")
    chain.write_env({"PATH": "/usr/bin:/bin", "FROM_SNAPSHOT": "multi\nline"})
    out = bash(helpers, SUBMIT, failing_sbatch(tmp_path, failures=1))
    assert out == "successor=777\n"
    assert nul_list(tmp_path / "call-0.args") == nul_list(tmp_path / "call-1.args")
    assert nul_list(tmp_path / "call-1.args") == [
        "--parsable", f"--export-file={chain.env_file}", "--dependency=afterany:99",
        "--job-name=job.sh", "-p", "main",
        f"--comment=longrun:{chain.chain_id}:2", str(chain.link_script), "--restart-count=1",
        "--initial-job=99", "--previous-job=99", "--retries=0",
    ]  # fmt: skip
    environment = nul_list(tmp_path / "call-1.env")
    assert "PATH=/usr/bin:/bin" in environment  # sbatch's own; the job's comes by the file
    assert not [v for v in environment if v.startswith(("FROM_SNAPSHOT=", "NOT_IN_SNAPSHOT="))]
    assert not [v for v in environment if v.startswith("SLURM_CPUS")]
    kinds = [e["event"] for e in chain.read_events()]
    assert kinds == ["successor_retry", "successor_queued"]
    assert chain.read_events()[0]["error"].endswith("Socket timed out")
    assert chain.successor("99") == "777"
    assert (tmp_path / "state" / "jobs" / "777").read_text() == chain.chain_id + "\n"


def test_successor_submission_gives_up_after_the_bounded_time(tmp_path: Path) -> None:
    helpers = render_helpers(tmp_path, environ={"LONGRUN_SUBMIT_RETRY_SECONDS": "3"})
    chain = ChainFolder(tmp_path / "state" / "chains" / "20261125-120000-abcd")
    chain.write_env({"PATH": "/usr/bin:/bin"})
    started = time.monotonic()
    out = bash(helpers, SUBMIT, failing_sbatch(tmp_path, failures=100))
    assert out == "failed\n"
    # It kept trying for the 3 s it was given (bash counts whole seconds: at least 2 s pass),
    # backing off 2 s, then 4 s, ... and gave up.
    assert time.monotonic() - started >= 2
    events = chain.read_events()
    retries = [e for e in events if e["event"] == "successor_retry"]
    assert [e["retry_in"] for e in retries] == ["2", "4", "8", "16"][: len(retries)]
    assert len(retries) >= 2 and events[-1]["event"] == "successor_failed"
    assert len(list(tmp_path.glob("call-*.args"))) == len(retries)
    assert chain.successor("99") is None


def failing_command(tmp_path: Path, name: str, message: str) -> Path:
    """A directory whose `name` command fails with Slurm's words."""
    return stand_ins(tmp_path / "bin", **{name: f"echo {shquote(message)} >&2\nexit 1"})


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("slurm_load_jobs error: Invalid job id specified", 1),  # slurmctld: no such job
        ("slurm_load_jobs error: Socket timed out on send/recv operation", 2),  # no answer
        ("scontrol: error: Unable to contact slurm controller", 2),
    ],
)
def test_only_slurms_own_word_makes_a_job_unknown(
    helpers: Path, tmp_path: Path, message: str, status: int
) -> None:
    out = bash(helpers, "lr_job_info 58; echo $?", failing_command(tmp_path, "scontrol", message))
    assert out == f"{status}\n"


def test_a_failed_look_never_queues_a_second_successor(helpers: Path, tmp_path: Path) -> None:
    bin_dir = failing_command(tmp_path, "scontrol", "slurm_load_jobs error: Socket timed out")
    failing_command(tmp_path, "sbatch", "sbatch must not be called")
    code = """LR_RESTART_COUNT=0 LR_INITIAL=99 LR_RETRIES=0 LR_TERM_VERDICT=''
LR_LABEL='link 1/1000' LR_LINK_DIR=$LONGRUN_CHAIN_DIR/links/99; mkdir -p "$LR_LINK_DIR"
echo 1234 > "$LR_LINK_DIR/successor"
lr_ensure_successor; echo "successor=$LR_SUCCESSOR"
"""
    assert bash(helpers, code, bin_dir) == "successor=1234\n"
    chain = ChainFolder(tmp_path / "state" / "chains" / "20261125-120000-abcd")
    assert [e["event"] for e in chain.read_events()] == ["successor_unchecked"]


def test_the_tag_finds_a_successor_whose_sbatch_answer_was_lost(
    helpers: Path, tmp_path: Path
) -> None:
    chain_id = "20261125-120000-abcd"
    rows = (
        f"41|PENDING|longrun:{chain_id}:2|\n"  # another link of the chain
        f"42|CANCELLED|longrun:{chain_id}:1|\n"  # not queued any more
        f"43|PENDING|my | own comment longrun:{chain_id}:1|\n"
    )
    out = bash(
        helpers, "lr_find_tagged 1; echo $? $LR_FOUND", fake_command(tmp_path, "squeue", rows)
    )
    assert out == "0 43\n"
    out = bash(helpers, "lr_find_tagged 5; echo $?", fake_command(tmp_path, "squeue", rows))
    assert out == "1\n"


def test_the_body_is_never_written_through_a_symbolic_link(helpers: Path, tmp_path: Path) -> None:
    target = tmp_path / "someone-elses-file"
    target.write_text("untouched\n")
    code = f"""LR_RESTART_COUNT=0 LR_TERMINATED=0 LR_FORWARD_PENDING=0 LR_CHECK_PENDING=0
LR_LINK_DIR=$LONGRUN_CHAIN_DIR/links/99; mkdir -p "$LR_LINK_DIR"
ln -s {shquote(target)} "$LR_LINK_DIR/$LONGRUN_SCRIPT_NAME"
LONGRUN_SCRIPT_TEXT='echo from the body'
LONGRUN_INTERPRETER=(/bin/bash)
lr_write_body; lr_run_body
echo "rc=$LR_BODY_RC"
"""
    assert bash(helpers, code) == "from the body\nrc=0\n"
    assert target.read_text() == "untouched\n"
    body = tmp_path / "state" / "chains" / "20261125-120000-abcd" / "links" / "99" / "job.sh"
    assert not body.is_symlink() and body.read_text() == "echo from the body"


@pytest.mark.parametrize(
    ("nodes", "sinfo", "lost"),
    [
        ("2", "allocated\nallocated\n", False),
        ("2", "allocated\ndown*\n", True),
        ("2", "allocated\nmixed*\n", True),  # not responding
        ("2", "allocated\nfailing\n", True),
        ("1", "down*\n", False),  # one node: its loss ends the job, Slurm says NODE_FAIL
    ],
)
def test_a_failed_script_on_a_lost_node_is_the_nodes_failure(
    helpers: Path, tmp_path: Path, nodes: str, sinfo: str, lost: bool
) -> None:
    # (The wait for slurmctld to notice a silent node death is proven on the cluster.)
    job = f"SLURM_JOB_NUM_NODES={nodes} SLURM_JOB_NODELIST=vm,vm-b LONGRUN_NODE_WAIT_SECONDS=0"
    code = f"{job}; lr_node_lost && echo lost || echo ok"
    # (scontrol show config, as the local cluster answers: the wait is SlurmdTimeout + 30 s)
    fake_command(tmp_path, "scontrol", "SlurmdTimeout           = 20 sec\n")
    out = bash(helpers, code, fake_command(tmp_path, "sinfo", sinfo))
    assert out == ("lost\n" if lost else "ok\n")


@pytest.mark.parametrize("damage", ["missing", "altered", "appended"])
def test_a_link_whose_library_is_missing_or_altered_runs_nothing(
    tmp_path: Path, damage: str
) -> None:
    where = chain_location(tmp_path, "/nonexistent")
    chain = Path(where.chain_dir)
    marker = tmp_path / "body-ran"
    plan = plan_of(f"#!/bin/bash\ntouch {shquote(marker)}\n", [], where=where)
    folder = ChainFolder(chain)
    folder.write_link_script(render_link_script(plan))
    library = render_library()
    if damage == "altered":
        library = library.replace("lr_check_folder\n", ":\n", 1)
    elif damage == "appended":
        library += "touch " + shquote(marker) + "\n"
    if damage != "missing":
        folder.write_library(library)
    result = subprocess.run(
        ["bash", str(folder.link_script), "--restart-count=0"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": guarded_path(), "SLURM_JOB_ID": "99"},
    )
    assert result.returncode == 1
    assert f"{folder.library_file} is missing or altered" in result.stderr
    assert "nothing of your script ran" in result.stderr
    assert not marker.exists()
    assert folder.ended() == states.CHAIN_FAILED
    assert [p.name for p in chain.iterdir() if p.name.startswith(".ended")] == []


@pytest.mark.parametrize(
    ("pattern", "resolved"),
    [
        ("slurm-%A_%a.out", "slurm-4000_7.out"),
        ("out_%a_%j.txt", "out_7_%j.txt"),
        ("%4a-%x-%%a.log", "0007-%x-%%a.log"),
        ("logs/%A/%3A.%a", "logs/4000/4000.7"),
        ("lit\\eral_%a", "lit\\eral_%a"),
    ],
)
def test_an_elements_later_links_write_its_files(
    helpers: Path, pattern: str, resolved: str
) -> None:
    code = f"""LR_ARRAY_JOB=4000 LR_ELEMENT=7
lr_array_pattern {shquote(pattern)}; printf '%s' "$LR_PATTERN"
"""
    assert bash(helpers, code) == resolved


def test_an_array_element_comes_from_slurm_first_and_from_its_argument_later(
    helpers: Path,
) -> None:
    show = 'echo "$LR_SELF|$LR_TAG_ID|$LR_ELEMENT|$LR_ARRAY_ELEMENT|${LR_ENDED_FILE##*chains/}"'
    first = f"""export SLURM_ARRAY_JOB_ID=4000 SLURM_ARRAY_TASK_ID=7 SLURM_ARRAY_TASK_COUNT=5
export SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_MAX=9 SLURM_ARRAY_TASK_STEP=2
LR_ARRAY_ELEMENT=''; lr_array_element && {show}"""
    later = f"""LR_ARRAY_ELEMENT=4000,7,5,1,9,2; lr_array_element && {show}"""
    chain = "20261125-120000-abcd"
    assert bash(helpers, first) == f"4000_7|{chain}_7|7|4000,7,5,1,9,2|{chain}/elements/7/ended\n"
    assert bash(helpers, later) == f"99|{chain}_7|7|4000,7,5,1,9,2|{chain}/elements/7/ended\n"
    assert bash(helpers, "LR_ARRAY_ELEMENT=''; lr_array_element || echo refused") == "refused\n"
