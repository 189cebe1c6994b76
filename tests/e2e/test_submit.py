"""Submitting on the real cluster: what sbatch_longrun prints, and how it finds the script."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chaintest import TWO_LINKS, chain_of, environment, run_cli, submit_chain
from longrun import slurm
from longrun.errors import SlurmCommandError
from slurmtest import Cluster

pytestmark = pytest.mark.slurm


def state_is_empty(state: Path) -> bool:
    """Nothing was left behind: no state folder, or one without chains and job records."""
    if not state.exists():
        return True
    return not any((state / "chains").iterdir()) and not any((state / "jobs").iterdir())


def test_sbatch_refusal_shows_sbatchs_own_message_and_leaves_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    (tmp_path / "job.sh").write_text("#!/bin/bash\necho hi\n")
    result = run_cli(
        "sbatch_longrun", "--no-watch", "--state-dir", "state", "-p", "nosuch", "job.sh",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode != 0
    assert "sbatch: error: invalid partition specified: nosuch" in result.stderr
    assert "nothing was submitted" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "state").exists()


def test_no_controller_is_a_clear_error_and_nothing_is_written(
    cluster: Cluster, tmp_path: Path
) -> None:
    conf = Path(os.environ["SLURM_CONF"]).read_text()
    bogus = tmp_path / "slurm.conf"
    bogus.write_text(
        "\n".join(
            "SlurmctldPort=1" if line.startswith("SlurmctldPort=") else line
            for line in conf.splitlines()
        )
    )
    (tmp_path / "job.sh").write_text("#!/bin/bash\necho hi\n")
    result = run_cli(
        "sbatch_longrun", "--no-watch", "--state-dir", "state", "job.sh",
        cwd=tmp_path, env=environment(SLURM_CONF=str(bogus)),
    )  # fmt: skip
    assert result.returncode != 0
    assert "Unable to contact slurm controller" in result.stderr
    assert not (tmp_path / "state").exists()


def test_prints_the_job_id_and_the_chain_id(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "job.sh").write_text("#!/bin/bash\n#SBATCH -o out.txt\necho hi\n")
    result = run_cli("sbatch_longrun", "--no-watch", "--state-dir", "state", "job.sh", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    chain = chain_of(cluster, tmp_path / "state", result.stdout)
    assert result.stdout == f"Submitted batch job {chain.first_job}\n"
    assert f"chain {chain.chain_id}" in result.stderr
    assert chain.wait_end() == "COMPLETED"


def test_parsable_prints_only_the_job_id(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "job.sh").write_text("#!/bin/bash\n#SBATCH -o out.txt\necho hi\n")
    result = run_cli(
        "sbatch_longrun", "--no-watch", "--state-dir", "state", "--parsable", "job.sh",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().isdigit()
    chain = chain_of(cluster, tmp_path / "state", result.stdout)
    assert chain.wait_end() == "COMPLETED"


def test_test_only_is_validated_by_sbatch_and_creates_no_chain(
    cluster: Cluster, tmp_path: Path
) -> None:
    (tmp_path / "job.sh").write_text("#!/bin/bash\necho hi\n")
    result = run_cli(
        "sbatch_longrun", "--no-watch", "--state-dir", "state", "--test-only", "job.sh",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "to start at" in result.stderr  # sbatch: Job 123 to start at ...
    assert not (tmp_path / "state").exists()
    refused = run_cli(
        "sbatch_longrun", "--no-watch", "--state-dir", "state", "--test-only", "-p", "nosuch",
        "job.sh", cwd=tmp_path,
    )  # fmt: skip
    assert refused.returncode != 0 and "invalid partition" in refused.stderr


def test_script_from_standard_input_runs_as_a_chain(cluster: Cluster, tmp_path: Path) -> None:
    script = '#!/bin/bash\n#SBATCH -o out.txt\necho "link $SLURM_LONGRUN_RESTART_COUNT of $SLURM_JOB_NAME"\n'
    result = run_cli(
        "sbatch_longrun", "--no-watch", "--state-dir", "state",
        cwd=tmp_path, input=script + TWO_LINKS,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    chain = chain_of(cluster, tmp_path / "state", result.stdout)
    assert chain.wait_end() == "COMPLETED"
    out = (tmp_path / "out.txt").read_text()
    assert "link 0 of sbatch" in out and "link 1 of sbatch" in out  # sbatch's name for stdin


def test_wrap_runs_as_a_chain(cluster: Cluster, tmp_path: Path) -> None:
    command = 'echo "link $SLURM_LONGRUN_RESTART_COUNT of $SLURM_JOB_NAME"; ' + TWO_LINKS
    result = run_cli(
        "sbatch_longrun", "--no-watch", "--state-dir", "state", "-o", "out.txt",
        f"--wrap={command}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    chain = chain_of(cluster, tmp_path / "state", result.stdout)
    assert chain.wait_end() == "COMPLETED"
    out = (tmp_path / "out.txt").read_text()
    assert "link 0 of wrap" in out and "link 1 of wrap" in out


def test_python_batch_script_runs_as_a_chain(cluster: Cluster, tmp_path: Path) -> None:
    script = """#!/usr/bin/env python3
#SBATCH -o out.txt
import os, sys
count = int(os.environ["SLURM_LONGRUN_RESTART_COUNT"])
print(f"python link {count} args={sys.argv[1:]}", flush=True)
sys.exit(0 if count >= 1 else int(os.environ["SLURM_LONGRUN_CONTINUE_CODE"]))
"""
    chain = submit_chain(cluster, tmp_path, script, script_args=["a b", "c"], name="job.py")
    assert chain.wait_end() == "COMPLETED"
    out = (tmp_path / "out.txt").read_text()
    assert "python link 0 args=['a b', 'c']" in out and "python link 1 args=['a b', 'c']" in out


def test_version_names_the_slurm_even_without_slurm_conf(cluster: Cluster, tmp_path: Path) -> None:
    without = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"}
    # Here (no /etc/slurm), plain sbatch cannot tell its version without SLURM_CONF.
    with pytest.raises(SlurmCommandError):
        slurm.run(["sbatch", "--version"], env=without)
    for program in ("longrun", "sbatch_longrun"):
        said = run_cli(program, "--version", cwd=tmp_path, env=without)
        assert said.returncode == 0
        assert said.stdout.strip().endswith(f"(Slurm {cluster.version_text})"), said.stdout
