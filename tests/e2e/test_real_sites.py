"""Real sites and real scripts on the local cluster: the environment, standard input."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from chaintest import environment, run_cli, submit_chain
from slurmtest import FINAL_STATES, Cluster, wait_for

pytestmark = pytest.mark.slurm

DUMP_ENV = """#!/bin/bash
#SBATCH -o out.txt
env -0 > "env-$SLURM_LONGRUN_RESTART_COUNT"
greet
[ "$SLURM_LONGRUN_RESTART_COUNT" -ge 1 ] || exit "$SLURM_LONGRUN_CONTINUE_CODE"
"""


def read_env(path: Path) -> dict[str, str]:
    entries = path.read_bytes().decode(errors="surrogateescape").split("\0")
    return dict(entry.split("=", 1) for entry in entries if "=" in entry)


def test_link_2_sees_the_environment_link_1_saw(cluster: Cluster, tmp_path: Path) -> None:
    # An exported shell function (as Lmod's `module`), 1.2 MB of variables (twenty of 60 kB:
    # Linux refuses any single one over 128 KiB), a value with newlines, one with "=".
    big = {f"LONGRUN_TEST_BIG_{i}": f"{i}" * 60_000 for i in range(20)}
    env = environment(
        **big,
        LONGRUN_TEST_LINES="one\ntwo\n three",
        LONGRUN_TEST_EQUALS="a=b==c",
        **{"BASH_FUNC_greet%%": "() {  echo hello from an exported function\n}"},
    )
    chain = submit_chain(cluster, tmp_path, DUMP_ENV, env=env)
    assert chain.wait_end(timeout=180) == "COMPLETED"
    first, second = read_env(tmp_path / "env-0"), read_env(tmp_path / "env-1")
    for name, value in {**big, "LONGRUN_TEST_EQUALS": "a=b==c"}.items():
        assert first[name] == value and second[name] == value, name
    assert second["LONGRUN_TEST_LINES"] == "one\ntwo\n three"
    assert (tmp_path / "out.txt").read_text().count("hello from an exported function") == 2

    def comparable(env: dict[str, str]) -> dict[str, str]:
        # Slurm's per-job variables and longrun's own differ by design; `_` is bash's last word.
        return {k: v for k, v in env.items() if not k.startswith("SLURM_") and k != "_"}

    assert comparable(first) == comparable(second)


def test_the_script_reads_the_jobs_standard_input(cluster: Cluster, tmp_path: Path) -> None:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "in.txt").write_text("first line of the input\n")
    script = """#!/bin/bash
#SBATCH -o out.txt
#SBATCH --input=in.txt
read -r line
echo "stdin: $line"
"""
    chain = submit_chain(cluster, tmp_path, script)
    assert chain.wait_end() == "COMPLETED"
    assert "stdin: first line of the input" in (tmp_path / "out.txt").read_text()


def test_jobs_the_script_submits_itself_are_not_part_of_the_chain(
    cluster: Cluster, tmp_path: Path
) -> None:
    # An afterok pipeline started from the body: longrun cancel leaves its jobs alone.
    script = """#!/bin/bash
#SBATCH -o out.txt
sbatch --parsable --dependency=afterok:$SLURM_JOB_ID -J post -o /dev/null --wrap true > post.id
while [ ! -e go ]; do sleep 0.2; done
"""
    chain = submit_chain(cluster, tmp_path, script)
    chain.wait_link_running(0)
    post = cluster.wait_file(tmp_path / "post.id").strip()
    result = run_cli(
        "longrun", "cancel", chain.chain_id, "--state-dir", str(chain.state_dir), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert chain.wait_end() == "CANCELLED"
    assert post not in chain.jobs()
    (ended,) = chain.events("chain_ended")
    assert post not in ended["cancelled"].split(",")
    # Still queued: its afterok can no longer hold, but that is Slurm's business and yours.
    assert cluster.queue([post]) == {post: "PENDING"}
    cluster.cancel(post)


def test_a_self_requeuing_script_gets_a_warning_unless_silent(tmp_path: Path) -> None:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "job.sh").write_text(
        "#!/bin/bash\n#SBATCH --signal=B:USR1@90\ntrap 'scontrol requeue $SLURM_JOB_ID' USR1\n"
        "srun python train.py\n"
    )
    for verbosity, shown in (("DEFAULT", True), ("SILENT", False)):
        result = run_cli(
            "sbatch_longrun", "--dry-run", "--use-verbosity", verbosity, "job.sh", cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
        assert ("line 3: your trap requeues the job" in result.stderr) is shown


def test_a_link_refuses_a_chain_folder_others_can_write(cluster: Cluster, tmp_path: Path) -> None:
    script = """#!/bin/bash
#SBATCH -o out.txt
echo "body of link $SLURM_LONGRUN_RESTART_COUNT"
while [ ! -e go ]; do sleep 0.2; done
exit "$SLURM_LONGRUN_CONTINUE_CODE"
"""
    chain = submit_chain(cluster, tmp_path, script)
    chain.wait_link_running(0)
    (chain.folder / "env").chmod(0o666)  # anyone could now choose the next link's environment
    (tmp_path / "go").touch()
    assert chain.wait_end() == "FAILED"
    out = (tmp_path / "out.txt").read_text()
    assert out.count("body of link") == 1
    assert "refusing to run" in out and "env is writable by other users (mode 666)" in out


THREE_LINKS = """#!/bin/bash
#SBATCH -o out.txt
[ "$SLURM_LONGRUN_RESTART_COUNT" -ge 2 ] && exit "${FINAL_EXIT:-0}"
exit "$SLURM_LONGRUN_CONTINUE_CODE"
"""


@pytest.mark.parametrize(
    ("mail_type", "final_exit", "expected"),
    [
        ("ALL", "0", ["Began", "Ended"]),  # not one mail per link
        ("END", "0", ["Ended"]),
        ("FAIL", "0", []),  # the chain completed: nothing failed
        ("FAIL", "3", ["Failed"]),  # the chain failed: one mail
    ],
)
def test_mail_follows_the_chain_not_its_links(
    cluster: Cluster, tmp_path: Path, mail_type: str, final_exit: str, expected: list[str]
) -> None:
    name = f"mail-{secrets.token_hex(4)}"  # tests run in parallel: one name per chain
    chain = submit_chain(
        cluster, tmp_path, THREE_LINKS, "-J", name, f"--mail-type={mail_type}",
        env=environment(FINAL_EXIT=final_exit),
    )  # fmt: skip
    assert chain.wait_end() == ("COMPLETED" if final_exit == "0" else "FAILED")
    assert len(chain.links()) == 3
    last = chain.links()[-1]
    cluster.wait_sacct(last, FINAL_STATES)  # slurmctld has mailed about it by then

    def kinds() -> list[str]:
        return [subject.split(" ")[3].rstrip(",") for subject in cluster.mails(name)]

    # MailProg runs in the background: wait for the mails expected, then compare them all.
    wait_for(lambda: len(kinds()) >= len(expected) or None, timeout=30, what=f"mails of {name}")
    assert kinds() == expected
    subjects = cluster.mails(name)
    if "Began" in expected:
        assert f"Job_id={chain.first_job} " in subjects[0]
    if expected[-1:] in (["Ended"], ["Failed"]):
        assert f"Job_id={last} " in subjects[-1]
