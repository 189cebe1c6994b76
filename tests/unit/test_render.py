"""Rendering the link script: golden files, determinism, shellcheck, and hostile values.

Set LONGRUN_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change, then read the
diff before committing it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import plantest
from longrun.plan import ChainLocation, LinkPlan, WrapperOptions
from longrun.protocol import BATCH_SIGNALS
from longrun.render import library_sha256, render_library, render_link_script, shquote

GOLDEN = Path(__file__).parent / "golden"
LIBRARY_MARKER = "\n# --- the helper library"

WHERE = ChainLocation(
    chain_id="20261125-120000-abcd",
    chain_dir="/home/user/.longrun/chains/20261125-120000-abcd",
    state_dir="/home/user/.longrun",
    submit_dir="/home/user/project",
    slurm_bin_dir="/usr/bin",
)

# Text that would do something if bash ever evaluated it: each tries to create CANARY.
HOSTILE = (
    "a b",
    "",
    "it's",
    'say "hi"',
    "$(touch CANARY)",
    "`touch CANARY`",
    "; touch CANARY;",
    "line1\ntouch CANARY\nline3",
    "$HOME ${PATH} $((1+1)) \\ \\n",
    "'; touch CANARY; '",
    "-n",
    "*",
    "\t tab",
)


def plan_of(
    text: str, argv: Sequence[str], script_args: Sequence[str] = (), **options: Any
) -> LinkPlan:
    """The shared planner, with this file's place and script name unless a test gives its own."""
    return plantest.plan_of(
        text, argv, script_args, **{"where": WHERE, "name": "train.sbatch", **options}
    )


CASES = {
    "basic": lambda: plan_of(
        "#!/bin/bash\n#SBATCH --time=60\n#SBATCH --output=train-%x.out\n\npython train.py\n",
        [],
    ),
    "python_forwarded_signal": lambda: plan_of(
        "#!/usr/bin/env python3\n"
        "#SBATCH --signal=B:USR1@300\n"
        "#SBATCH --dependency=afterok:41 --time=4:00:00\n"
        "import os\nprint(os.environ['SLURM_LONGRUN_RESTART_COUNT'])\n",
        ["-p", "gpu", "-J", "my run", "--gres=gpu:1"],
        ["--lr", "0.1", "two words"],
        wrapper=WrapperOptions(max_restarts=5, retry_failed=1, verbosity="SILENT"),
    ),
    "wrap_step_signal": lambda: plan_of(
        "--wrap=srun ./simulate --resume",
        ["--signal=USR2@90", "--open-mode=truncate", "-t", "30"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendering_matches_the_golden_file(case: str) -> None:
    text = render_link_script(CASES[case]())
    golden = GOLDEN / f"{case}.sh"
    if os.environ.get("LONGRUN_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"{golden} is missing: run with LONGRUN_UPDATE_GOLDEN=1"
    assert text == golden.read_text()


RENDER_IN_A_NEW_PROCESS = """
import sys
sys.path.insert(0, sys.argv[1])
from test_render import CASES
from longrun.render import render_link_script
sys.stdout.write(render_link_script(CASES[sys.argv[2]]()))
"""


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendering_is_deterministic(case: str) -> None:
    """The same text from processes of their own, whatever their hash seed (set order)."""
    texts = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        command = [sys.executable, "-c", RENDER_IN_A_NEW_PROCESS, str(Path(__file__).parent), case]
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        texts.append(result.stdout)
    assert texts[0] == texts[1] == render_link_script(CASES[case]())


def shellcheck(path: Path) -> subprocess.CompletedProcess[str]:
    found = shutil.which("shellcheck")
    if found is None:
        pytest.fail("shellcheck is not installed (Debian: apt-get install shellcheck)")
    return subprocess.run([found, str(path)], capture_output=True, text=True, check=False)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_golden_input_is_clean_under_shellcheck_and_bash_n(case: str, tmp_path: Path) -> None:
    path = tmp_path / "link.sh"
    path.write_text(render_link_script(CASES[case]()))
    result = shellcheck(path)
    assert result.returncode == 0, result.stdout
    syntax = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    assert syntax.returncode == 0, syntax.stderr


def hostile_plan(tmp_path: Path) -> tuple[LinkPlan, str]:
    """A plan with a hostile value in every field a user controls."""
    odd = "dir with 'quote' $(touch CANARY) `touch CANARY` \"dq\"\nnewline"
    where = ChainLocation(
        chain_id="20261125-120000-abcd",
        chain_dir=str(tmp_path / odd / "state" / "chains" / "20261125-120000-abcd"),
        state_dir=str(tmp_path / odd / "state"),
        submit_dir=str(tmp_path / odd),
        slurm_bin_dir=str(tmp_path / odd / "bin"),
    )
    body = (
        "#!/bin/bash -e\n"
        "#SBATCH --comment='$(touch CANARY)'\n"
        '#SBATCH --job-name="`touch CANARY`"\n'
        "#SBATCH --dependency=afterok:1\n"
        "echo \"$@\" '$(still the user's own code)'\n"
        "LONGRUN_SCRIPT_END\n"
        "cat <<'EOF'\n$(touch CANARY)\nEOF\n"
    )
    argv = [
        "--output=/tmp/o $(touch CANARY).out",
        "--chdir",
        "/tmp/`touch CANARY`",
        "--export=ALL,X=$(touch CANARY)",
        "--comment",
        "line1\n$(touch CANARY)",
    ]
    name = "job $(touch CANARY)\n`x`.sh"
    return plan_of(body, argv, HOSTILE, name=name, where=where), body


def run_bash(script: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, check=False)


def test_hostile_values_in_every_field_render_clean_and_come_back_unchanged(
    tmp_path: Path,
) -> None:
    plan, body = hostile_plan(tmp_path)
    text = render_link_script(plan)
    path = tmp_path / "link.sh"
    path.write_text(text)
    checked = shellcheck(path)
    assert checked.returncode == 0, checked.stdout
    assert run_bash(f"bash -n {shquote(path)}", tmp_path).returncode == 0

    # Run the generated assignments (everything before the library check) and print every
    # value back, NUL-separated: each must equal what the plan holds, and nothing may run.
    assignments = text[: text.index(LIBRARY_MARKER)]
    printer = (
        '\nprintf \'%s\\0\' "$LONGRUN_CHAIN_DIR" "$LONGRUN_STATE_DIR" "$LONGRUN_SUBMIT_DIR"'
        ' "$LONGRUN_SLURM_BIN" "${LONGRUN_SCRIPT_ARGS[@]}" "${LONGRUN_SBATCH_OPTIONS[@]}"'
        ' "${LONGRUN_INTERPRETER[@]}" "$LONGRUN_SCRIPT_NAME" "$LONGRUN_COMMENT_PREFIX"\n'
    )
    result = run_bash(assignments + printer, tmp_path)
    assert result.returncode == 0, result.stderr
    expected = [
        plan.chain_dir, plan.state_dir, plan.submit_dir, plan.slurm_bin_dir,
        *plan.script_args, *plan.successor_options, plan.interpreter,
        *([plan.interpreter_arg] if plan.interpreter_arg else []), plan.script_name,
        plan.comment_prefix,
    ]  # fmt: skip
    assert result.stdout.decode().split("\0")[:-1] == expected

    # The user's script travels in a quoted here-document: it comes back byte for byte.
    start = text.index("IFS= read -r -d '' LONGRUN_SCRIPT_TEXT")
    end = text.index(f"\n{plan.body_delimiter}\n", start) + len(plan.body_delimiter) + 2
    heredoc = text[start:end] + "printf '%s' \"$LONGRUN_SCRIPT_TEXT\"\n"
    result = run_bash(heredoc, tmp_path)
    assert result.stdout.decode() == body
    assert not list(tmp_path.rglob("CANARY")), "a hostile value was executed"


def test_everything_above_the_prologue_is_a_comment_even_with_hostile_values(
    tmp_path: Path,
) -> None:
    # The header and the generated directives are #SBATCH comments that sbatch reads; a value
    # with a newline placed there would end the comment and become a command.
    plan, _ = hostile_plan(tmp_path)
    text = render_link_script(plan)
    top = text[: text.index("\nLONGRUN_CHAIN_ID=")].splitlines()
    assert top[0] == "#!/bin/bash"
    commands = [line for line in top if line.strip() and not line.startswith("#")]
    early = "; ".join(f"trap 'LR_EARLY_SIGNALS+=({name})' {name}" for name in BATCH_SIGNALS)
    early = early.replace("; trap 'LR_EARLY_SIGNALS+=(USR1)' USR1", "")
    assert commands == [f"trap 'LR_EARLY_TERM=1' TERM; trap 'LR_EARLY_CHECK=1' USR1; {early}"]
    # One-time options are disabled in the header (they go on the first link's command line).
    assert not [line for line in top if line.startswith("#SBATCH --dependency")]
    assert "##SBATCH --dependency=afterok:1" in top


def test_shquote_round_trips_through_bash(tmp_path: Path) -> None:
    for value in HOSTILE:
        result = run_bash(f"printf '%s' {shquote(value)}", tmp_path)
        assert result.stdout.decode() == value
    assert not list(tmp_path.rglob("CANARY"))


def test_the_library_matches_its_golden_file_and_is_clean(tmp_path: Path) -> None:
    text = render_library()
    golden = GOLDEN / "library.sh"
    if os.environ.get("LONGRUN_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    path = tmp_path / "library.sh"
    path.write_text(text)
    result = shellcheck(path)
    assert result.returncode == 0, result.stdout
    assert run_bash(f"bash -n {shquote(path)}", tmp_path).returncode == 0
    # No per-chain value: every chain's link script names the same checksum.
    sums = {
        line
        for case in CASES.values()
        for line in render_link_script(case()).splitlines()
        if line.startswith("LONGRUN_LIBRARY_SHA256=")
    }
    assert sums == {f"LONGRUN_LIBRARY_SHA256={library_sha256(text)}"}
    # What the link script hashes ($(<file) then one newline) is the file itself.
    assert text.endswith("}\n") and not text.endswith("\n\n")


TWO_LINES = "#!/bin/bash\necho hi\n"


def test_a_link_script_around_a_two_line_script_fits_one_screen() -> None:
    text = render_link_script(plan_of(TWO_LINES, []))
    assert len(text.splitlines()) < 80, len(text.splitlines())


def test_every_line_longrun_adds_is_marked() -> None:
    """Take away the marked block, the two lines that wrap your script as text and the last
    line (marked on the line itself): what is left is your script, twice (header and body)."""
    plan = plan_of("#!/bin/bash\n#SBATCH --time=5\n#SBATCH -J x\necho hi\n", [])
    lines = render_link_script(plan).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# >>> longrun"))
    end = next(i for i, line in enumerate(lines) if line.startswith("# <<< longrun"))
    assert lines[end + 1].startswith("IFS= read -r -d '' LONGRUN_SCRIPT_TEXT <<")
    assert lines[-2] == plan.body_delimiter and lines[-1].endswith(
        "# longrun: the link's ten steps (library.sh)"
    )
    users = lines[:start] + lines[end + 2 : -2]
    header = ["#!/bin/bash", "#SBATCH --time=5", "#SBATCH -J x"]
    assert users == [*header, *header, "echo hi"]
