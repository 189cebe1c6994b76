"""The package as users get it: `pip install .` into a fresh virtual environment, then the
commands work from a directory outside the checkout, with the templates from the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from slurmguard import stand_ins

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    sbatch = stand_ins(cwd / ".slurm", sbatch="echo 'slurm-wlm 22.05.8'")  # for --version
    env["PATH"] = f"{sbatch}:{env['PATH']}"
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_fresh_install_works_outside_the_checkout(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    assert run([sys.executable, "-m", "venv", str(venv)], tmp_path).returncode == 0
    pip = run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)], tmp_path)
    assert pip.returncode == 0, pip.stderr
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    bin_dir = venv / "bin"
    for command in (["sbatch_longrun", "--help"], ["longrun", "--help"]):
        result = run([str(bin_dir / command[0]), *command[1:]], outside)
        assert result.returncode == 0, result.stderr
        assert "Usage:" in result.stdout
    version = run([str(bin_dir / "longrun"), "--version"], outside)
    assert version.stdout.startswith("longrun, version ")
    assert version.stdout.endswith("(Slurm 22.05.8)\n")
    # The templates come from the installed package, not from this checkout.
    where = run(
        [str(bin_dir / "python"), "-c", "import longrun.render as r; print(r.templates_dir())"],
        outside,
    )
    assert where.returncode == 0, where.stderr
    templates = Path(where.stdout.strip())
    assert templates.is_relative_to(venv) and (templates / "link.sh.j2").is_file()
    (outside / "job.sh").write_text("#!/bin/bash\necho hi\n")
    dry = run([str(bin_dir / "sbatch_longrun"), "--dry-run", "job.sh"], outside)
    assert dry.returncode == 0, dry.stderr
    assert "# >>> longrun" in dry.stdout
    # Only the three runtime dependencies (and what they need themselves).
    listed = run([str(bin_dir / "pip"), "list", "--format=freeze"], outside).stdout
    names = {line.split("==")[0].lower() for line in listed.splitlines()}
    assert {"click", "loguru", "jinja2", "slurm-longrun"} <= names
    assert (
        names - {"click", "loguru", "jinja2", "markupsafe", "slurm-longrun", "pip", "setuptools"}
        == set()
    )


def test_pipx_install_gives_both_commands(tmp_path: Path) -> None:
    """`pipx install .` as the README says: each command on PATH, in an environment of its own."""
    env_dirs = {"PIPX_HOME": tmp_path / "pipx", "PIPX_BIN_DIR": tmp_path / "bin"}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update({k: str(v) for k, v in env_dirs.items()})
    result = subprocess.run(
        [sys.executable, "-m", "pipx", "install", str(ROOT)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for name in ("longrun", "sbatch_longrun"):
        version = run([str(tmp_path / "bin" / name), "--version"], tmp_path)
        assert version.returncode == 0, version.stderr
        assert version.stdout.startswith(f"{name}, version ")
