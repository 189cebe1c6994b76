"""Hard inputs on the real cluster: hostile values reach the job unchanged and nothing runs them.

Every hostile value tries to create a file named CANARY; after the chain, no such file may exist
anywhere the test can see (the work folder, the state folder, the home folder given to the job).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chaintest import TWO_LINKS, chain_of, environment, run_cli, submit_chain
from longrun import slurm
from slurmtest import Cluster

pytestmark = pytest.mark.slurm

HOSTILE_ARGS: list[str | bytes] = [
    "two words",
    "",
    "it's",
    'say "hi"',
    "$(touch CANARY)",
    "`touch CANARY`",
    "a; touch CANARY",
    "line1\nline2\n",
    "$HOME ${PATH} $((6*7)) \\ \\n *",
    "'; touch CANARY; '",
    "--max-restarts",  # a wrapper option after the script belongs to the script
    "3",
    "-n",
    b"\xff\xfe not utf-8",
]
HOSTILE_NAME = "name $(touch CANARY) `touch CANARY` 'q' \"d\""

DUMP_ARGS = """\
printf '%s\\0' "$@" > "args.$SLURM_LONGRUN_RESTART_COUNT"
"""


def no_canary(*roots: Path) -> None:
    found = [p for root in roots for p in root.rglob("*CANARY*") if p.name == "CANARY"]
    assert not found, f"a hostile value was executed: {found}"


def test_hostile_script_arguments_reach_every_link_byte_for_byte(
    cluster: Cluster, tmp_path: Path
) -> None:
    script = "#!/bin/bash\n#SBATCH -o out.txt\n" + DUMP_ARGS + TWO_LINKS
    chain = submit_chain(cluster, tmp_path, script, script_args=HOSTILE_ARGS)  # type: ignore[arg-type]
    assert chain.wait_end() == "COMPLETED"
    expected = b"".join(os.fsencode(a) + b"\0" for a in HOSTILE_ARGS)
    assert (tmp_path / "args.0").read_bytes() == expected
    assert (tmp_path / "args.1").read_bytes() == expected
    no_canary(tmp_path)


def test_hostile_job_name_output_chdir_and_script_path_work_and_run_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    submit_dir = tmp_path / f"submit {HOSTILE_NAME}"
    work = tmp_path / f"work {HOSTILE_NAME}"
    work.mkdir(parents=True)
    output = work / f"out {HOSTILE_NAME}.txt"
    script = (
        "#!/bin/bash\n"
        'echo "link $SLURM_LONGRUN_RESTART_COUNT name=$SLURM_JOB_NAME pwd=$PWD"\n' + TWO_LINKS
    )
    chain = submit_chain(
        cluster,
        submit_dir,
        script,
        "-J",
        HOSTILE_NAME,
        f"--output={output}",
        "--chdir",
        str(work),
        name=f"job {HOSTILE_NAME}.sh",
    )
    assert chain.wait_end() == "COMPLETED"
    out = output.read_text()
    for link in (0, 1):
        assert f"link {link} name={HOSTILE_NAME} pwd={work}" in out
    no_canary(tmp_path)


def test_job_name_from_a_script_file_name_with_a_newline_runs_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    name = "job\ntouch CANARY;.sh"
    script = '#!/bin/bash\n#SBATCH -o out.txt\necho "name=[$SLURM_JOB_NAME]"\n' + TWO_LINKS
    chain = submit_chain(cluster, tmp_path, script, name=name)
    assert chain.wait_end() == "COMPLETED"
    assert (tmp_path / "out.txt").read_text().count(f"name=[{name}]") == 2
    no_canary(tmp_path)


def test_hostile_environment_values_reach_every_link_unchanged(
    cluster: Cluster, tmp_path: Path
) -> None:
    value = "multi\nline 'single' \"double\" $(touch CANARY) `touch CANARY` ; $HOME \\"
    script = (
        "#!/bin/bash\n#SBATCH -o out.txt\n"
        'printf "%s" "$HOSTILE" > "env.$SLURM_LONGRUN_RESTART_COUNT"\n' + TWO_LINKS
    )
    chain = submit_chain(cluster, tmp_path, script, env=environment(HOSTILE=value))
    assert chain.wait_end() == "COMPLETED"
    assert (tmp_path / "env.0").read_text() == value
    assert (tmp_path / "env.1").read_text() == value
    no_canary(tmp_path)


def test_sbatch_lines_after_the_first_command_are_ignored(cluster: Cluster, tmp_path: Path) -> None:
    script = (
        "#!/bin/bash\n#SBATCH -o out.txt\n\necho started\n"
        "#SBATCH --job-name=late\n#SBATCH --array=1-3\n"
        'echo "name=$SLURM_JOB_NAME array=${SLURM_ARRAY_TASK_ID:-none}"\n'
    )
    chain = submit_chain(cluster, tmp_path, script)
    assert chain.wait_end() == "COMPLETED"
    assert "name=job.sh array=none" in (tmp_path / "out.txt").read_text()


@pytest.mark.parametrize("export", ["NONE", "CHOSEN,ALSO"])
def test_restricted_export_still_gets_the_chains_variables(
    cluster: Cluster, tmp_path: Path, export: str
) -> None:
    script = (
        "#!/bin/bash\n#SBATCH -o out.txt\n"
        'echo "link=$SLURM_LONGRUN_RESTART_COUNT initial=$SLURM_LONGRUN_INITIAL_JOB_ID'
        ' chosen=${CHOSEN-unset},${ALSO-unset} other=${OTHER-unset}"\n' + TWO_LINKS
    )
    env = environment(CHOSEN="yes", ALSO="too", OTHER="leak")
    chain = submit_chain(cluster, tmp_path, script, f"--export={export}", env=env)
    assert chain.wait_end() == "COMPLETED"
    out = (tmp_path / "out.txt").read_text()
    chosen = "yes,too" if export != "NONE" else "unset,unset"
    for link in (0, 1):
        assert f"link={link} initial={chain.first_job} chosen={chosen} other=unset" in out


def test_user_dependency_applies_to_the_first_link_only(cluster: Cluster, tmp_path: Path) -> None:
    blocker = cluster.sbatch("-H", "-o", "/dev/null", "--wrap", "true")  # held until released
    # Link 0 waits for a file, so that its successor can be looked at while it is queued.
    script = (
        "#!/bin/bash\n#SBATCH -o out.txt\n"
        'if [ "$SLURM_LONGRUN_RESTART_COUNT" = 0 ]; then\n'
        "  while [ ! -e go ]; do sleep 0.2; done\n  exit $SLURM_LONGRUN_CONTINUE_CODE\nfi\n"
    )
    chain = submit_chain(cluster, tmp_path, script, f"--dependency=afterok:{blocker}")
    assert cluster.job_field(chain.first_job, "Dependency") == f"afterok:{blocker}(unfulfilled)"
    slurm.run(["scontrol", "release", blocker])
    successor = str(chain.wait_event("successor_queued")[0]["successor"])
    # The successor waits for its predecessor only: the user's dependency is not repeated.
    assert cluster.job_field(successor, "Dependency") == f"afterany:{chain.first_job}(unfulfilled)"
    (tmp_path / "go").touch()
    assert chain.wait_end(timeout=120) == "COMPLETED"
    assert chain.links() == [chain.first_job, successor]


def test_open_mode_truncate_is_respected_with_a_warning(cluster: Cluster, tmp_path: Path) -> None:
    script = '#!/bin/bash\n#SBATCH -o out.txt\necho "link $SLURM_LONGRUN_RESTART_COUNT"\n'
    (tmp_path / "job.sh").write_text(script + TWO_LINKS)
    result = run_cli(
        "sbatch_longrun", "--no-watch", "--state-dir", "state", "--open-mode=truncate",
        "job.sh", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "--open-mode=truncate: every link truncates the output file" in result.stderr
    chain = chain_of(cluster, tmp_path / "state", result.stdout)
    assert chain.wait_end() == "COMPLETED"
    out = (tmp_path / "out.txt").read_text()
    assert "link 1" in out and "link 0" not in out


def test_output_patterns_name_each_links_file_as_sbatch_would(
    cluster: Cluster, tmp_path: Path
) -> None:
    script = '#!/bin/bash\necho "link $SLURM_LONGRUN_RESTART_COUNT"\n' + TWO_LINKS
    chain = submit_chain(
        cluster, tmp_path, script, "-J", "pat", "-o", "%x-%j.out", "-e", "%x-%A.err"
    )
    assert chain.wait_end() == "COMPLETED"
    first, second = chain.links()
    assert "link 0" in (tmp_path / f"pat-{first}.out").read_text()
    assert "link 1" in (tmp_path / f"pat-{second}.out").read_text()
    assert (tmp_path / f"pat-{first}.err").exists() and (tmp_path / f"pat-{second}.err").exists()
    # With %x alone, every link appends to one file.
    other = tmp_path / "one"
    chain = submit_chain(cluster, other, script, "-J", "pat", "-o", "%x.out")
    assert chain.wait_end() == "COMPLETED"
    out = (other / "pat.out").read_text()
    assert "link 0" in out and "link 1" in out


def test_malformed_signal_shows_sbatchs_own_error(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "job.sh").write_text("#!/bin/bash\necho hi\n")
    result = run_cli(
        "sbatch_longrun", "--no-watch", "--state-dir", "state", "--signal=B:NOPE@10",
        "job.sh", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode != 0
    assert "sbatch: error: Invalid --signal specification" in result.stderr
    assert not (tmp_path / "state").exists()


def test_nothing_is_written_outside_the_state_folder_and_the_users_paths(
    cluster: Cluster, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    submit = tmp_path / "submit"
    script = "#!/bin/bash\n#SBATCH -o out.txt\necho hi\n" + TWO_LINKS
    chain = submit_chain(cluster, submit, script, env=environment(HOME=str(home)))
    assert chain.wait_end() == "COMPLETED"
    assert sorted(p.name for p in submit.iterdir()) == ["job.sh", "out.txt", "state"]
    assert list(home.iterdir()) == []
