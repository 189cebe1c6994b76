"""Batch scripts as people write them, compared with plain sbatch on the local cluster.

Each script is submitted twice, held: with plain sbatch and with sbatch_longrun. Both must
agree on whether Slurm takes it (and with the same first words when it refuses), and on the
options the job gets, as `scontrol show job` reports them. Some also run to the end, and the
chain must end as the plain job did.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest

from chaintest import chain_of, run_cli
from longrun import slurm
from slurmtest import Cluster, WaitTimeout, wait_for

pytestmark = pytest.mark.slurm

# Fields of `scontrol show job` that the script's options decide.
FIELDS = (
    "JobName", "TimeLimit", "Partition", "NumNodes", "NumCPUs", "NumTasks", "CPUs/Task",
    "MinMemoryNode", "Features", "Requeue", "BeginTime", "Nice", "ArrayTaskId",
    "ArrayTaskThrottle",
)  # fmt: skip

HEADER_CASES = {
    # sbatch stops reading directives at the first command, wherever it stands.
    "command_before_directives": "#!/bin/bash\nset -euo pipefail\n#SBATCH --time=7\necho hi\n",
    "command_between_directives": (
        "#!/bin/bash\n#SBATCH -J between\nmodule purge 2>/dev/null || true\n#SBATCH --time=7\n"
    ),
    "source_between_directives": "#!/bin/bash\n#SBATCH -t 3\nsource /dev/null\n#SBATCH -t 9\n",
    "bare_option_line": "#!/bin/bash\n#SBATCH -J bare\n--mem=32G\n#SBATCH --time=9\ntrue\n",
    # Look-alikes that are not directives.
    "look_alikes": (
        "#!/bin/bash\n#BATCH --time=2\n#SBATCh --time=3\n##SBATCH --time=4\n# #SBATCH --time=5\n"
        "#SBATCH -J real\ntrue\n"
    ),
    "bang_look_alike": "#!/bin/bash\n#SBATCH -J first\n!#SBATCH --time=4\n#SBATCH -t 6\ntrue\n",
    # Comments, spacing and grouping.
    "comment_glued_to_value": "#!/bin/bash\n#SBATCH --begin=2031-01-01T09:00:00# start\ntrue\n",
    "tab_before_comment": "#!/bin/bash\n#SBATCH --time=11\t# minutes\ntrue\n",
    "two_spaces_and_trailing": "#!/bin/bash\n#SBATCH  --time=12   \n#SBATCH -J  spaced  \ntrue\n",
    "several_on_one_line": "#!/bin/bash\n#SBATCH -N1 -n2 -c 2 --time=13 -J many\ntrue\n",
    "abbreviated_long_option": "#!/bin/bash\n#SBATCH --no-reque\n#SBATCH --mem-per-c=100\ntrue\n",
    "ambiguous_abbreviation": "#!/bin/bash\n#SBATCH --tim=14\ntrue\n",
    "nice_and_mem": "#!/bin/bash\n#SBATCH --nice=5 --mem=100M\ntrue\n",
    # Values that would be dangerous unquoted in a shell.
    "angle_brackets_in_name": "#!/bin/bash\n#SBATCH --job-name=<name>\ntrue\n",
    "glob_in_name": "#!/bin/bash\n#SBATCH -J *NAME*\ntrue\n",
    "ampersand_constraint": "#!/bin/bash\n#SBATCH --constraint=a&b\ntrue\n",
    "dollar_partition": "#!/bin/bash\n#SBATCH -p $PARTITION\ntrue\n",
    "quoted_value_with_space": '#!/bin/bash\n#SBATCH -J "two words"\ntrue\n',
    # Index lists as slurmctld reads them (tests/unit/data/array-specs-*.txt has many more).
    "array_in_brackets_throttled": "#!/bin/bash\n#SBATCH --array=[0-5]%2\ntrue\n",
    "array_list_in_brackets": "#!/bin/bash\n#SBATCH -a [1,3,5-7]\ntrue\n",
    "array_step_in_brackets": "#!/bin/bash\n#SBATCH --array=[1-9:2]\ntrue\n",
    "array_empty_items": "#!/bin/bash\n#SBATCH --array=1,,2\ntrue\n",
    "array_two_throttles": "#!/bin/bash\n#SBATCH --array=1-4:2%2%4\ntrue\n",
    "array_throttle_not_a_number": "#!/bin/bash\n#SBATCH --array=1-3%x\ntrue\n",
    "array_only_a_comma": "#!/bin/bash\n#SBATCH --array=,\ntrue\n",
    "array_step_without_range": "#!/bin/bash\n#SBATCH --array=5:2\ntrue\n",
    "array_nested_brackets": "#!/bin/bash\n#SBATCH --array=[[0-5]]\ntrue\n",
    "array_hexadecimal": "#!/bin/bash\n#SBATCH --array=0x10\ntrue\n",
    "array_beyond_max_array_size": "#!/bin/bash\n#SBATCH --array=0-1001\ntrue\n",
}


def submit_both(tmp_path: Path, name: str, text: str) -> tuple[tuple[int, str], tuple[int, str]]:
    """(returncode, output) of plain sbatch and of sbatch_longrun, both with --hold."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    script = tmp_path / name
    script.write_text(text)
    plain = slurm.run(["sbatch", "--hold", "--parsable", name], cwd=tmp_path, check=False)
    ours = run_cli(
        "sbatch_longrun", "--no-watch", "--state-dir", str(tmp_path / "state"), "--hold",
        "--parsable", name, cwd=tmp_path,
    )  # fmt: skip
    return (plain.returncode, plain.stdout + plain.stderr), (
        ours.returncode,
        ours.stdout + ours.stderr,
    )


def job_fields(job_id: str) -> dict[str, str]:
    text = slurm.run(["scontrol", "show", "job", "-o", job_id]).stdout
    found = dict(re.findall(r"(\S+?)=(\S*)", text))
    return {key: found.get(key, "") for key in FIELDS}


def refusal(output: str) -> str:
    """What sbatch's first line of complaint says, without its own prefixes."""
    line = output.strip().splitlines()[0]
    return line.split("error:", 1)[1] if "error:" in line else line.split(";", 1)[-1]


@pytest.mark.parametrize("case", sorted(HEADER_CASES))
def test_longrun_reads_the_script_as_sbatch_does(
    cluster: Cluster, tmp_path: Path, case: str
) -> None:
    (plain_rc, plain_out), (ours_rc, ours_out) = submit_both(tmp_path, "job.sh", HEADER_CASES[case])
    assert (ours_rc == 0) == (plain_rc == 0), (plain_out, ours_out)
    if plain_rc != 0:
        # Slurm refused it: longrun passes Slurm's own words on, and leaves nothing behind.
        assert refusal(plain_out).strip() in ours_out
        assert not list((tmp_path / "state" / "chains").glob("*"))
        return
    plain_job = plain_out.strip().split(";")[0].split()[0]
    ours_job = ours_out.strip().split()[0]
    try:
        assert job_fields(ours_job) == job_fields(plain_job)
    finally:
        cluster.cancel(plain_job, ours_job)


RUN_CASES = {
    # name: (script name, text, what the job prints)
    "sh_body_exit_3": ("job.sh", "#!/bin/sh\necho from sh\nexit 3\n"),
    "zsh_body": ("job.zsh", "#!/bin/zsh\nprint -r -- from zsh $ZSH_VERSION[1]\n"),
    "tcsh_body": ("job.csh", "#!/bin/tcsh\nset who = tcsh\necho from $who\nexit 4\n"),
    "unclosed_heredoc": ("job.sh", "#!/bin/bash\ncat <<EOF\nnever closed\n"),
    "syntax_error_in_the_middle": ("job.sh", "#!/bin/bash\necho before\nif then fi\necho after\n"),
    "no_final_newline": ("job.sh", "#!/bin/bash\necho no newline; exit 0"),
    "non_ascii": ("job.sh", "#!/bin/bash\n# Grüße, 日本語\necho 'größe ✓'\n"),
}


@pytest.mark.parametrize("case", sorted(RUN_CASES))
def test_the_run_ends_as_plain_sbatchs_does(cluster: Cluster, tmp_path: Path, case: str) -> None:
    name, text = RUN_CASES[case]
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text(text)
    plain = cluster.sbatch("-o", "plain.out", name, cwd=tmp_path)
    ours = run_cli(
        "sbatch_longrun", "--no-watch", "--state-dir", str(tmp_path / "state"), "-o", "ours.out",
        name, cwd=tmp_path,
    )  # fmt: skip
    assert ours.returncode == 0, ours.stderr
    chain = chain_of(cluster, tmp_path / "state", ours.stdout)
    plain_state = cluster.wait_final(plain)
    cluster.wait_sacct(plain, {plain_state})
    expected = "COMPLETED" if plain_state == "COMPLETED" else "FAILED"
    assert chain.wait_end() == expected
    # slurmdbd may show a FAILED job with ExitCode 0:0 for a moment (seen once): wait until the
    # two records agree, and compare the last ones read.
    records: list = []

    def agree() -> bool:
        records[:] = [
            cluster.wait_sacct(chain.links()[-1], {plain_state}),
            cluster.wait_sacct(plain, {plain_state}),
        ]
        return records[0].exit_code == records[1].exit_code

    with contextlib.suppress(WaitTimeout):
        wait_for(agree, timeout=30, interval=2, what="the exit codes in sacct")
    assert records[0].exit_code == records[1].exit_code
    plain_lines = (tmp_path / "plain.out").read_text().splitlines()
    ours_lines = [
        line
        for line in (tmp_path / "ours.out").read_text().splitlines()
        if not line.startswith("longrun: ")
    ]
    # The script's own output, error messages included, but for the path bash names it by.
    plain_lines = [re.sub(r"/\S+/slurm_script", "SCRIPT", line) for line in plain_lines]
    ours_lines = [re.sub(r"/\S+/" + re.escape(name), "SCRIPT", line) for line in ours_lines]
    assert ours_lines == plain_lines
