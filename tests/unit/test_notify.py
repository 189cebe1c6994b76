"""Notifications (--notify, --notify-url, --notify-on), the chain's identity for the workload,
the progress looks and the word a stalling chain says, run whole on the job side against
stand-in Slurm commands. On the real cluster: tests/e2e/test_cost_and_notify.py.
"""

from __future__ import annotations

import http.server
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from jobside import JobSide

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


def test_a_link_that_cannot_queue_a_successor_says_the_chain_stalls(tmp_path: Path) -> None:
    side = side_with(tmp_path, notify=str(notifier(tmp_path)))
    side.on_call(
        "sbatch",
        'echo "sbatch: error: Batch job submission failed: Access/permission denied" >&2; exit 1',
    )
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    link = side.run("200", 0)
    assert link.returncode == 0
    (stalled,) = side.events(protocol.CHAIN_STALLED)
    assert "Access/permission denied" in stalled["reason"]
    assert "the chain stalls here" in link.stderr
    told = [t["LONGRUN_EVENT"] for t in heard(tmp_path)]
    assert told == [protocol.SUCCESSOR_FAILED, protocol.CHAIN_STALLED]
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
class Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        Hook.received.append(
            (self.path, self.headers.get("Content-Type", ""), self.rfile.read(length))
        )
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    Hook.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook?token=a%20b"
    server.shutdown()
    server.server_close()


def without_curl(tmp_path: Path) -> str:
    """A folder with every command of /usr/bin but curl: a node without curl."""
    folder = tmp_path / "no-curl"
    folder.mkdir()
    for entry in Path("/usr/bin").iterdir():
        if entry.name != "curl":
            (folder / entry.name).symlink_to(entry)
    return str(folder)


@pytest.mark.parametrize("client", ["curl", "python3"])
def test_the_url_hears_each_event_as_json(tmp_path: Path, hook: str, client: str) -> None:
    assert shutil.which("curl") and shutil.which("python3")
    side = side_with(tmp_path, notify_url=hook, notify_on="all")
    base = without_curl(tmp_path) if client == "python3" else "/usr/bin:/bin"
    path = f"{side.bin}:{guarded_path(base)}"
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("200", 0, path=path)
    side.slurm_shows("200", states.COMPLETED)
    side.body_exits(0)
    side.run("300", 1, "200", path=path)
    assert side.events(protocol.NOTIFY_FAILED) == []
    posted = [json.loads(body) for _, _, body in Hook.received]
    assert [(p["event"], p["job"]) for p in posted] == [
        (protocol.LINK_STARTED, "200"), (protocol.LINK_STARTED, "300"),
        (protocol.LINK_INTERRUPTED, "300"), (protocol.CHAIN_ENDED, "300"),
    ]  # fmt: skip
    assert {p["chain"] for p in posted} == {side.chain.chain_id}
    assert posted[-1]["state"] == states.CHAIN_COMPLETED
    assert {(path, kind) for path, kind, _ in Hook.received} == {
        ("/hook?token=a%20b", "application/json"),
    }


def test_a_sigterm_during_a_notifier_is_handled_at_once(tmp_path: Path) -> None:
    """A notifier that takes its time must not hold back the SIGTERM handler: Slurm kills the
    job KillWait seconds after it, and the link must say why it ended before that."""
    slow = notifier(tmp_path, body=f"#!/bin/bash\ntouch {tmp_path}/notifying\nsleep 20\n")
    side = side_with(tmp_path, notify=str(slow), notify_on="all")
    side.slurm_shows("200", states.RUNNING)
    link = subprocess.Popen(side.command("200", 0), env=side.environ("200"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "notifying").exists():  # link_started is being told
            assert time.monotonic() < deadline and link.poll() is None
            time.sleep(0.05)
        side.slurm_shows("200", states.TIMEOUT)
        signalled = time.monotonic()
        link.send_signal(signal.SIGTERM)
        while not side.events(protocol.SIGTERM):
            assert time.monotonic() - signalled < 5, "the SIGTERM waited for the notifier"
            time.sleep(0.05)
        assert link.wait(timeout=60) == 0
    finally:
        link.kill()
        link.wait()
    assert side.bodies_run() == []  # the body never starts after a SIGTERM
    (verdict,) = side.events(protocol.SIGTERM)
    assert verdict["slurm_state"] == states.TIMEOUT
