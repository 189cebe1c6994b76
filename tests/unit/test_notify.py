"""Notifications (--notify, --notify-url, --notify-on), the chain's identity for the workload,
the progress looks and the word a stalling chain says, run whole on the job side against
stand-in Slurm commands. On the real cluster: tests/e2e/test_cost_and_notify.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from jobside import JobSide
from webhook import Webhook, webhook

from longrun import protocol, states
from longrun.errors import UsageError
from longrun.notify import notify_plan
from longrun.plan import WrapperOptions
from slurmguard import guarded_path

# A notifier that writes what it was told, one JSON object per call.
NOTIFIER = """#!/bin/bash
python3 -c 'import json, os, sys
keys = ("LONGRUN_EVENT", "LONGRUN_CHAIN_ID", "LONGRUN_JOB_ID", "LONGRUN_LINK", "LONGRUN_STATE",
        "LONGRUN_REASON", "LONGRUN_EVENT_JSON")
print(json.dumps({k: os.environ.get(k) for k in keys} | {"cwd": os.getcwd(), "args": sys.argv[1:]}))
' "$@" >>{heard}
exit {code}
"""


def notifier(tmp_path: Path, code: int = 0, body: str | None = None) -> Path:
    path = tmp_path / "notify.sh"
    default = NOTIFIER.replace("{heard}", shlex.quote(str(tmp_path / "heard")))
    path.write_text(body or default.replace("{code}", str(code)))
    path.chmod(0o755)
    return path


def heard(tmp_path: Path) -> list[dict[str, str]]:
    path = tmp_path / "heard"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_until(condition: Callable[[], object], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def side_with(tmp_path: Path, **options: str) -> JobSide:
    settings = {"LONGRUN_NOTIFY_SECONDS": options.pop("seconds", "30")}
    return JobSide(tmp_path, WrapperOptions(**options), settings=settings)  # type: ignore[arg-type]


def test_the_notifier_hears_the_chain_end_with_its_facts(tmp_path: Path) -> None:
    side = side_with(tmp_path, notify=f"{notifier(tmp_path)} first 'two words'")
    assert side.run("200", 0).returncode == 0
    (told,) = heard(tmp_path)
    assert told["LONGRUN_EVENT"] == protocol.CHAIN_ENDED
    assert told["LONGRUN_STATE"] == states.CHAIN_COMPLETED
    assert told["LONGRUN_REASON"] == "the script finished (exit 0)"
    assert (told["LONGRUN_CHAIN_ID"], told["LONGRUN_JOB_ID"], told["LONGRUN_LINK"]) == (
        side.chain.chain_id, "200", "1",
    )  # fmt: skip
    assert told["args"] == ["first", "two words"]  # split as a shell would, run by none
    assert told["cwd"] == str(tmp_path)  # the submit directory
    event = json.loads(told["LONGRUN_EVENT_JSON"])
    assert (event["chain"], event["event"], event["state"]) == (
        side.chain.chain_id, protocol.CHAIN_ENDED, states.CHAIN_COMPLETED,
    )  # fmt: skip


def test_by_default_only_the_end_and_what_needs_a_person_are_told(tmp_path: Path) -> None:
    side = side_with(tmp_path, notify=str(notifier(tmp_path)))
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    assert side.run("200", 0).returncode == 0  # a link that continues: nothing to tell
    assert heard(tmp_path) == []


def test_notify_on_all_tells_every_link(tmp_path: Path) -> None:
    side = side_with(tmp_path, notify=str(notifier(tmp_path)), notify_on="all")
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("200", 0)
    side.slurm_shows("200", states.COMPLETED)
    side.body_exits(0)
    side.run("300", 1, "200")
    told = [(t["LONGRUN_EVENT"], t["LONGRUN_JOB_ID"], t["LONGRUN_LINK"]) for t in heard(tmp_path)]
    assert told == [
        (protocol.LINK_STARTED, "200", "1"),
        (protocol.LINK_STARTED, "300", "2"),
        (protocol.LINK_INTERRUPTED, "300", "2"),
        (protocol.CHAIN_ENDED, "300", "2"),
    ]
    (interrupted,) = side.events(protocol.LINK_INTERRUPTED)
    assert (interrupted["previous"], interrupted["verdict"]) == ("200", states.VERDICT_CONTINUE)


def test_a_hanging_notifier_is_cut_off_and_the_chain_goes_on(tmp_path: Path) -> None:
    hang = notifier(tmp_path, body="#!/bin/bash\ntrap '' TERM\nsleep 60\n")
    side = side_with(tmp_path, notify=str(hang), seconds="2")
    started = time.monotonic()
    assert side.run("200", 0).returncode == 0
    assert time.monotonic() - started < 20  # 2 s, then KILL 5 s later
    (failed,) = side.events(protocol.NOTIFY_FAILED)
    assert (failed["notifier"], failed["notified"]) == ("command", protocol.CHAIN_ENDED)
    assert failed["error"] == "no end in 2s"
    assert side.chain.ended() == states.CHAIN_COMPLETED


def test_a_failing_notifier_costs_one_event_and_is_not_told_of_its_own_failure(
    tmp_path: Path,
) -> None:
    side = side_with(tmp_path, notify=str(notifier(tmp_path, code=3)), notify_on="all")
    assert side.run("200", 0).returncode == 0
    failures = side.events(protocol.NOTIFY_FAILED)
    assert [(f["notified"], f["exit_code"]) for f in failures] == [
        (protocol.LINK_STARTED, "3"), (protocol.CHAIN_ENDED, "3"),
    ]  # fmt: skip
    assert protocol.NOTIFY_FAILED not in [t["LONGRUN_EVENT"] for t in heard(tmp_path)]
    assert side.chain.ended() == states.CHAIN_COMPLETED


def test_a_url_nobody_answers_is_tried_three_times_within_the_bound(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    side = side_with(tmp_path, notify_url=f"http://127.0.0.1:{port}/hook", seconds="6")
    started = time.monotonic()
    assert side.run("200", 0).returncode == 0
    assert time.monotonic() - started < 30
    (failed,) = side.events(protocol.NOTIFY_FAILED)
    assert (failed["notifier"], failed["notified"]) == ("url", protocol.CHAIN_ENDED)
    assert failed["exit_code"] != "0" and failed["error"]
    assert side.chain.ended() == states.CHAIN_COMPLETED


# A refusal that is not about the node: a submit limit (slurmctld's words for it).
QOS_LIMIT = "Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)"


def test_a_link_that_cannot_queue_a_successor_says_the_chain_stalls(tmp_path: Path) -> None:
    side = side_with(tmp_path, notify=str(notifier(tmp_path)))
    side.on_call(
        "sbatch",
        f'echo "sbatch: error: Batch job submission failed: {QOS_LIMIT}" >&2; exit 1',
    )
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    link = side.run("200", 0)
    assert link.returncode == 0
    (stalled,) = side.events(protocol.CHAIN_STALLED)
    assert QOS_LIMIT in stalled["reason"]
    assert "the chain stalls here" in link.stderr
    told = [t["LONGRUN_EVENT"] for t in heard(tmp_path)]
    assert told == [protocol.SUCCESSOR_REFUSED, protocol.CHAIN_STALLED]
    assert side.chain.ended() is None  # not an end: the watcher can still repair it


def test_a_link_with_its_successor_queued_does_not_stall(tmp_path: Path) -> None:
    side = side_with(tmp_path)
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("200", 0)
    assert side.events(protocol.CHAIN_STALLED) == []
    assert len(side.events(protocol.SUCCESSOR_QUEUED)) == 1


def test_every_link_knows_the_chain_and_its_number(tmp_path: Path) -> None:
    side = JobSide(tmp_path)
    side.body_runs(f'echo "$SLURM_LONGRUN_CHAIN_ID $SLURM_LONGRUN_LINK" >>{tmp_path}/identity')
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("200", 0)
    side.slurm_shows("200", states.COMPLETED)
    side.run("300", 1, "200")
    chain = side.chain.chain_id
    assert (tmp_path / "identity").read_text().splitlines() == [f"{chain} 1", f"{chain} 2"]


def test_links_look_at_the_progress_file_at_their_start_and_end(tmp_path: Path) -> None:
    progress = tmp_path / "ckpt"
    side = side_with(tmp_path, progress_file=str(progress))
    side.body_runs(f"touch -d @1796000000 {progress}")
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("200", 0)
    side.slurm_shows("200", states.COMPLETED)
    side.body_runs(f"touch -d @1796000100 {progress}")
    side.run("300", 1, "200")
    looks = [(e["job"], e["at"], e["previous"], e["mtime"]) for e in side.events("progress")]
    assert looks == [
        ("200", protocol.PROGRESS_AT_END, "", "1796000000"),
        ("300", protocol.PROGRESS_AT_START, "200", "1796000000"),
        ("300", protocol.PROGRESS_AT_END, "200", "1796000100"),
    ]


def test_a_missing_progress_file_is_no_progress(tmp_path: Path) -> None:
    side = side_with(tmp_path, progress_file=str(tmp_path / "not-yet"))
    side.run("200", 0)
    (look,) = side.events("progress")
    assert look["mtime"] == ""


# --- checked at submission ------------------------------------------------------------------
def test_a_notifier_is_resolved_to_an_absolute_path_now(tmp_path: Path) -> None:
    path = notifier(tmp_path)
    environ = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    assert notify_plan("./notify.sh x", None, "end", str(tmp_path), environ).command == (
        str(path), "x",
    )  # fmt: skip
    assert notify_plan("notify.sh", None, "end", "/", environ).command == (str(path),)
    plan = notify_plan(None, "https://hooks.example.org/a?b=c", "all", "/", environ)
    assert plan.command == () and plan.events == protocol.NOTIFY_EVENTS["all"]
    assert notify_plan(None, None, "all", "/", environ).events == ()


def test_a_directory_or_a_file_that_cannot_run_is_no_notifier(tmp_path: Path) -> None:
    (tmp_path / "plain.sh").write_text("#!/bin/sh\n")
    for name in ("./plain.sh", str(tmp_path)):
        with pytest.raises(UsageError, match="is not an executable file"):
            notify_plan(name, None, "end", str(tmp_path), dict(os.environ))


# --- --notify-url, against a real HTTP server -------------------------------------------------
@pytest.fixture
def hook() -> Iterator[Webhook]:
    with webhook() as server:
        yield server


def without_curl(tmp_path: Path) -> str:
    """A folder with every command of /usr/bin but curl: a node without curl."""
    folder = tmp_path / "no-curl"
    folder.mkdir()
    for entry in Path("/usr/bin").iterdir():
        if entry.name != "curl":
            (folder / entry.name).symlink_to(entry)
    return str(folder)


@pytest.mark.parametrize("client", ["curl", "python3"])
def test_the_url_hears_each_event_as_json(tmp_path: Path, hook: Webhook, client: str) -> None:
    assert shutil.which("curl") and shutil.which("python3")
    side = side_with(tmp_path, notify_url=f"{hook.url}/hook?token=a%20b", notify_on="all")
    base = without_curl(tmp_path) if client == "python3" else "/usr/bin:/bin"
    path = f"{side.bin}:{guarded_path(base)}"
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("200", 0, path=path)
    side.slurm_shows("200", states.COMPLETED)
    side.body_exits(0)
    side.run("300", 1, "200", path=path)
    assert side.events(protocol.NOTIFY_FAILED) == []
    posted = [post.json() for post in hook.posts]
    assert [(p["event"], p["job"]) for p in posted] == [
        (protocol.LINK_STARTED, "200"), (protocol.LINK_STARTED, "300"),
        (protocol.LINK_INTERRUPTED, "300"), (protocol.CHAIN_ENDED, "300"),
    ]  # fmt: skip
    assert {p["chain"] for p in posted} == {side.chain.chain_id}
    assert posted[-1]["state"] == states.CHAIN_COMPLETED
    assert {(post.path, post.content_type) for post in hook.posts} == {
        ("/hook?token=a%20b", "application/json"),
    }


def test_a_sigterm_during_a_notifier_is_handled_at_once(tmp_path: Path) -> None:
    """A notifier that takes its time must not hold back the SIGTERM handler: Slurm kills the
    job KillWait seconds after it, and the link must say why it ended before that."""
    slow = notifier(
        tmp_path, body=f"#!/bin/bash\ntouch {tmp_path}/notifying\nsleep 6\ntouch {tmp_path}/told\n"
    )
    side = side_with(tmp_path, notify=str(slow), notify_on="all", seconds="20")
    side.slurm_shows("200", states.RUNNING)
    link = subprocess.Popen(side.command("200", 0), env=side.environ("200"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        # link_started is being told
        wait_until(lambda: (tmp_path / "notifying").exists() or link.poll() is not None,
                   "the notifier to start")  # fmt: skip
        side.slurm_shows("200", states.TIMEOUT)
        link.send_signal(signal.SIGTERM)
        wait_until(lambda: side.events(protocol.SIGTERM) or (tmp_path / "told").exists(),
                   "the SIGTERM handler or the notifier's end")  # fmt: skip
        assert side.events(protocol.SIGTERM), "the SIGTERM waited for the notifier"
        assert not (tmp_path / "told").exists()
        assert link.wait(timeout=60) == 0
    finally:
        link.kill()
        link.wait()
    assert side.bodies_run() == []  # the body never starts after a SIGTERM
    (verdict,) = side.events(protocol.SIGTERM)
    assert verdict["slurm_state"] == states.TIMEOUT


# --- found by a review that tried to break the notifiers (each failed before its fix) ---------
EVENT_NOTIFIER = """#!/bin/bash
printf '%s\\n' "$LONGRUN_EVENT" >>{heard}
"""


def test_a_notifier_whose_path_has_an_equals_sign_runs(tmp_path: Path) -> None:
    # A submit directory such as .../lr=0.01/ is common; the notifier's absolute path is then
    # taken by `env` for one more NAME=VALUE, so env runs nothing (it prints the environment and
    # exits 0), or runs the notifier's first argument as the command.
    folder = tmp_path / "lr=0.01"
    folder.mkdir()
    notify = folder / "notify.sh"
    notify.write_text(EVENT_NOTIFIER.replace("{heard}", shlex.quote(str(tmp_path / "heard"))))
    notify.chmod(0o755)
    side = JobSide(tmp_path, WrapperOptions(notify="./lr=0.01/notify.sh"))
    link = side.run("200", 0)
    assert link.returncode == 0
    assert side.chain.ended() == states.CHAIN_COMPLETED
    heard = (tmp_path / "heard").read_text().split() if (tmp_path / "heard").exists() else []
    assert heard == [protocol.CHAIN_ENDED], (
        f"the notifier never ran and no notify_failed: {side.events(protocol.NOTIFY_FAILED)}; "
        f"the job log got env's dump: {'LONGRUN_EVENT_JSON=' in link.stderr}"
    )


def test_a_successor_found_gone_and_not_replaced_is_a_stall(tmp_path: Path) -> None:
    # Link 200 queues job 300 at its start. At the pre-timeout check job 300 is gone (Slurm
    # answers: no such job, no record) and sbatch now refuses: nothing continues the chain. The
    # link still holds 300 in LR_SUCCESSOR, so lr_check_stalled stays silent.
    side = JobSide(tmp_path)
    side.on_call(
        "sbatch",
        '[ -f "$dir/next-id" ] && { echo "sbatch: error: Batch job submission failed:'
        ' Job violates accounting/QOS policy" >&2; exit 1; }',
    )
    side.signal_during_body()
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    link = side.run("200", 0)
    assert link.returncode == 0
    assert [e["successor"] for e in side.events(protocol.SUCCESSOR_QUEUED)] == ["300"]
    assert [e["successor"] for e in side.events("successor_missing")] == ["300"]
    assert len(side.events(protocol.SUCCESSOR_REFUSED)) == 1  # (a limit: retried meanwhile)
    assert side.chain.ended() is None
    assert len(side.events(protocol.CHAIN_STALLED)) == 1, "the chain stalls without a word"


def test_a_successor_that_may_be_queued_is_not_called_missing(tmp_path: Path) -> None:
    # sbatch timed out (Slurm may have queued the job all the same) and squeue did not answer
    # when the link looked for it: whether a successor is queued is unknown. chain_stalled says
    # "no successor is queued" and tells the notifier (the README: "without a watcher,
    # resubmit"): a resubmitted chain and the queued successor then run the same work at once.
    heard = tmp_path / "heard"
    notify = tmp_path / "notify.sh"
    notify.write_text(EVENT_NOTIFIER.replace("{heard}", shlex.quote(str(heard))))
    notify.chmod(0o755)
    side = JobSide(tmp_path, WrapperOptions(notify=str(notify)))
    side.on_call(
        "sbatch",
        'echo "sbatch: error: Batch job submission failed: Socket timed out on send/recv'
        ' operation" >&2; exit 1',
    )
    side.on_call("squeue", 'echo "slurm_load_jobs error: Socket timed out" >&2; exit 1')
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    link = side.run("200", 0)
    assert link.returncode == 0
    stalled = [e["reason"] for e in side.events(protocol.CHAIN_STALLED)]
    told = heard.read_text().split() if heard.exists() else []
    assert not any("no successor is queued" in r for r in stalled), stalled
    assert "whether a successor is queued is unknown" in link.stderr
    assert protocol.CHAIN_STALLED not in told, told


def _tree(root: int) -> list[int]:
    """root and its descendants (Slurm signals every process of a job)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            rest = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(rest[1]), []).append(int(stat.parent.name))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def _signal_job(root: int, signum: int) -> None:
    for pid in _tree(root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def test_a_hanging_notifier_does_not_keep_a_preempted_link_from_queueing_its_successor(
    tmp_path: Path,
) -> None:
    # Link 300 continues link 200. It is preempted a second after it starts: Slurm sends
    # SIGTERM to every process of the job and SIGKILL KillWait (default 30 s) later. Without a
    # notifier the link queues its successor at once (lr_ensure_successor after the trap). With
    # --notify-on all and a notifier that hangs (the default bound, 30 s + 5 s), the link_started
    # and link_interrupted notifications run first, in the link's own flow: SIGKILL comes before
    # any successor is queued, and the chain stops without a word.
    hang = tmp_path / "notify.sh"
    hang.write_text("#!/bin/bash\ntrap '' TERM\nsleep 120\n")
    hang.chmod(0o755)
    side = JobSide(tmp_path, WrapperOptions(notify=str(hang), notify_on="all"))
    side.previous_verdict("200", states.VERDICT_CONTINUE)
    side.slurm_shows("200", states.COMPLETED)
    side.slurm_shows("300", states.RUNNING)
    side.body_runs("sleep 20")  # the script's own work, if it gets to run
    link = subprocess.Popen(
        side.command("300", 1, "200"), env=side.environ("300"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: side.events(protocol.LINK_STARTED), "link 300 to start")
        side.slurm_shows("300", states.RUNNING, preempted=True)  # PreemptTime is set
        _signal_job(link.pid, signal.SIGTERM)
        # Slurm's SIGKILL comes KillWait (30 s) later: here as soon as the successor is queued.
        deadline = time.monotonic() + 30
        while link.poll() is None and not side.submitted() and time.monotonic() < deadline:
            time.sleep(0.1)
        _signal_job(link.pid, signal.SIGKILL)
        link.wait()
    finally:
        if link.poll() is None:
            _signal_job(link.pid, signal.SIGKILL)
    assert len(side.submitted()) == 1, "SIGKILL came before the successor was queued"


def test_the_event_json_is_json_in_a_locale_with_a_decimal_comma(tmp_path: Path) -> None:
    # sbatch passes the user's LANG/LC_ALL to the job; bash writes $EPOCHREALTIME with the
    # locale's decimal point ("1796000000,123456"), so every event line is `"t":1796000000,
    # 123456,` -- not JSON: the notifier's LONGRUN_EVENT_JSON, the POST body and (already
    # before this change) every line of events.jsonl, which read_events skips as damaged.
    locales = tmp_path / "locales"
    locales.mkdir()
    made = subprocess.run(
        ["localedef", "-i", "de_DE", "-f", "UTF-8", str(locales / "de_DE.UTF-8")],
        capture_output=True, check=False,
    )  # fmt: skip
    assert (locales / "de_DE.UTF-8").exists(), f"cannot build de_DE.UTF-8: {made.stderr!r}"
    dump = tmp_path / "notify.sh"
    dump.write_text(f'#!/bin/bash\nprintf "%s\\n" "$LONGRUN_EVENT_JSON" >>{tmp_path}/heard\n')
    dump.chmod(0o755)
    side = JobSide(tmp_path, WrapperOptions(notify=str(dump)))
    side.slurm_shows("200", states.RUNNING)
    env = side.environ("200") | {"LOCPATH": str(locales), "LANG": "de_DE.UTF-8"}
    subprocess.run(side.command("200", 0), env=env, capture_output=True, timeout=60, check=True)
    assert side.chain.ended() == states.CHAIN_COMPLETED
    (told,) = (tmp_path / "heard").read_text().splitlines()
    json.loads(told)  # the notifier's LONGRUN_EVENT_JSON (and the POST body)
    lines = (side.chain.link_dir("200") / "events.jsonl").read_text().splitlines()
    for line in lines:
        json.loads(line)


def test_the_url_is_posted_to_as_typed(tmp_path: Path) -> None:
    # curl expands [1-3] and {a,b} in a URL (globbing) unless told -g: one event, three POSTs
    # to three other addresses (python3's fallback posts once, to the URL as typed).
    with webhook() as hook:
        side = JobSide(tmp_path, WrapperOptions(notify_url=f"{hook.url}/hook?run=[1-3]"))
        assert side.run("200", 0).returncode == 0
    assert [post.path for post in hook.posts] == ["/hook?run=[1-3]"]


def test_the_notifier_hears_the_end_of_a_chain_whose_last_link_runs_out_of_time(
    tmp_path: Path,
) -> None:
    # The README: chain_ended is told for MAX_RESTARTS. The last link allowed reaches its time
    # limit: lr_on_term knows the chain ends with it (it asks Slurm for mail at the end with
    # --mail-type END), but lr_go_on's interrupted branch records no end and runs no notifier:
    # the most common end of a chain with --max-restarts is never told.
    heard = tmp_path / "heard"
    notify = tmp_path / "notify.sh"
    notify.write_text(EVENT_NOTIFIER.replace("{heard}", shlex.quote(str(heard))))
    notify.chmod(0o755)
    side = JobSide(tmp_path, WrapperOptions(notify=str(notify), max_restarts=1))
    side.previous_verdict("200", states.VERDICT_CONTINUE)
    side.slurm_shows("200", states.COMPLETED)
    side.slurm_shows("300", states.RUNNING)
    side.body_runs("sleep 20")
    link = subprocess.Popen(
        side.command("300", 1, "200"), env=side.environ("300"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_until(lambda: side.bodies_run() == ["300"], "link 300's script to start")
    side.slurm_shows("300", states.TIMEOUT)  # the time limit: Slurm TERMs every process
    _signal_job(link.pid, signal.SIGTERM)
    link.wait(timeout=30)
    assert side.bodies_run() == ["300"]
    assert [e["verdict"] for e in side.events("verdict")] == [states.VERDICT_INTERRUPTED]
    assert [e["reason"] for e in side.events("no_successor")] == ["max_restarts"]
    told = heard.read_text().split() if heard.exists() else []
    assert protocol.CHAIN_ENDED in told, f"the notifier heard {told}"


def test_no_link_interrupted_is_told_after_the_chain_ended(tmp_path: Path) -> None:
    # `longrun cancel` recorded the end, but its scancel of the queued successor came too late:
    # the successor starts, and before lr_check_go skips its body it tells the notifier
    # "link_interrupted" (README: "a link starts after one that did not end the chain").
    heard = tmp_path / "heard"
    notify = tmp_path / "notify.sh"
    notify.write_text(EVENT_NOTIFIER.replace("{heard}", shlex.quote(str(heard))))
    notify.chmod(0o755)
    side = JobSide(tmp_path, WrapperOptions(notify=str(notify), notify_on="all"))
    side.previous_verdict("200", states.VERDICT_CONTINUE)
    side.slurm_shows("200", states.COMPLETED)
    side.chain.ended_file.write_text(states.CHAIN_CANCELLED + "\n")
    assert side.run("300", 1, "200").returncode == 0
    assert side.bodies_run() == []
    told = heard.read_text().split() if heard.exists() else []
    assert protocol.LINK_INTERRUPTED not in told, told


def test_the_url_and_its_token_are_not_on_a_command_line(tmp_path: Path) -> None:
    # A webhook's URL is its secret (Slack, Teams, ntfy: ".../hooks/T0/B0/XXXX", "?token=").
    # lr_post gives it to curl (or python3) as an argument: /proc/PID/cmdline is readable by
    # every user of a shared node for as long as the POST runs (up to LONGRUN_NOTIFY_SECONDS).
    secret = "token=s3cr3t-webhook-key"
    seen: list[str] = []
    with webhook(delay=3) as hook:
        side = JobSide(tmp_path, WrapperOptions(notify_url=f"{hook.url}/hook?{secret}"))
        side.slurm_shows("200", states.RUNNING)
        link = subprocess.Popen(
            side.command("200", 0), env=side.environ("200"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while link.poll() is None and time.monotonic() < deadline and not seen:
            for pid in _tree(link.pid):
                cmdline = Path(f"/proc/{pid}/cmdline")
                try:
                    words = cmdline.read_bytes().decode(errors="replace").split("\0")
                except OSError:
                    continue
                if any(secret in word for word in words) and cmdline.stat().st_mode & 0o004:
                    seen.append(" ".join(words))
            time.sleep(0.1)
        link.wait(timeout=30)
    assert side.chain.ended() == states.CHAIN_COMPLETED
    assert seen == [], f"world-readable command line: {seen[0]!r}"


def test_a_notifier_others_can_change_is_refused_at_submission(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # anyone may replace what is in it
    (shared / "notify.sh").write_text("#!/bin/sh\n")
    (shared / "notify.sh").chmod(0o755)
    with pytest.raises(UsageError, match="writable by other users"):
        notify_plan("shared/notify.sh", None, "end", str(tmp_path), dict(os.environ))


def test_a_notifier_others_could_change_since_is_not_run(tmp_path: Path) -> None:
    path = notifier(tmp_path)
    side = side_with(tmp_path, notify=str(path))
    path.chmod(0o777)  # after the submission
    assert side.run("200", 0).returncode == 0
    assert heard(tmp_path) == []
    (failed,) = side.events(protocol.NOTIFY_FAILED)
    assert failed["error"].startswith("unsafe notifier:") and "writable by other" in failed["error"]
    assert side.chain.ended() == states.CHAIN_COMPLETED
