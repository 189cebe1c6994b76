"""Rules of the test harness itself: with CI set, no cluster fails the run; it never skips.

Also the local cluster script's refusal when it is not run as root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
E2E_TEST = "e2e/test_harness.py::test_scancel_gives_cancelled"


def run_pytest_without_cluster(ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["SLURM_CONF"] = "/nonexistent/slurm.conf"
    if ci:
        env["CI"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir",
         str(ROOT), "-p", "no:cacheprovider", "-p", "no:xdist", "-q", E2E_TEST],
        cwd=TESTS, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_with_ci_set_an_unusable_cluster_fails_the_run() -> None:
    result = run_pytest_without_cluster(ci=True)
    assert result.returncode != 0
    assert "CI is set and the local Slurm cluster is unusable" in result.stdout
    assert "skipped" not in result.stdout.splitlines()[-1]


def test_without_ci_an_unusable_cluster_skips_with_the_reason() -> None:
    result = run_pytest_without_cluster(ci=False)
    assert result.returncode == 0
    assert "1 skipped" in result.stdout.splitlines()[-1]


def test_local_cluster_script_says_to_run_as_root() -> None:
    if os.getuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash"]
    else:
        command = ["bash"]
    # A copy in a folder nobody can enter (the checkout may lie in a mode-700 home).
    scripts = Path(tempfile.mkdtemp(prefix="longrun-scripts-"))
    scripts.chmod(0o755)
    for name in ("local-slurm.sh", "slurm-root.sh"):
        shutil.copy(ROOT / "example" / name, scripts / name)
        (scripts / name).chmod(0o755)
    try:
        result = subprocess.run(
            [*command, str(scripts / "local-slurm.sh"), "up"],
            cwd="/", capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    finally:
        shutil.rmtree(scripts)
    assert result.returncode == 1
    assert "must run as root (try: sudo" in result.stderr


@pytest.mark.parametrize("args", [[], ["bogus"]])
def test_local_cluster_script_usage(args: list[str]) -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "example" / "local-slurm.sh"), *args],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "example/local-slurm.sh up" in result.stdout and "set -e" not in result.stdout
    if args:
        assert "unknown command 'bogus'" in result.stderr


@pytest.mark.parametrize(
    ("script", "args", "said"),
    [
        ("example/local-slurm.sh", ["up", "--slurm", "9.99"], "unknown Slurm version '9.99'"),
        ("example/local-slurm.sh", ["status", "--slurm"], "--slurm needs a version"),
        ("tests/run.sh", ["--slurm"], "--slurm needs a version"),
    ],
)
def test_an_unknown_slurm_version_is_a_usage_error(script: str, args: list[str], said: str) -> None:
    result = subprocess.run(
        ["bash", str(ROOT / script), *args],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert said in result.stderr


def test_the_projects_shell_scripts_are_clean_under_shellcheck() -> None:
    found = shutil.which("shellcheck")
    if not found:
        pytest.fail("shellcheck is not installed (Debian: apt-get install shellcheck)")
    scripts = [*sorted((ROOT / "example").glob("*.sh")), ROOT / "tests" / "run.sh"]
    scripts += [ROOT / ".ci" / "run", ROOT / "tests" / "faults" / "slurm-fault"]
    scripts += sorted((ROOT / "tests" / "unit" / "data").glob("*.sh"))
    result = subprocess.run(
        [found, "-x", *map(str, scripts)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout
