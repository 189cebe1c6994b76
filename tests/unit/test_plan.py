"""The plan: effective options, one-time options, generated directives, signals."""

from __future__ import annotations

import subprocess
from dataclasses import replace

import pytest

from longrun import slurm
from longrun.errors import SlurmCommandError, UsageError
from longrun.learning import LearningOptions
from longrun.plan import (
    ChainLocation,
    LinkPlan,
    WrapperOptions,
    effective_options,
    parse_signal,
)
from longrun.sbatch_options import parse_args
from plantest import plan_of

WHERE = ChainLocation(
    chain_id="20261125-120000-abcd",
    chain_dir="/state/chains/20261125-120000-abcd",
    state_dir="/state",
    submit_dir="/work",
    slurm_bin_dir="/usr/bin",
)


def plan_for(
    text: str,
    argv: list[str],
    environ: dict[str, str] | None = None,
    wrapper: WrapperOptions | None = None,
) -> LinkPlan:
    return plan_of(text, argv, where=WHERE, environ=environ, wrapper=wrapper)


def test_command_line_beats_environment_beats_directives() -> None:
    cli = parse_args(["-J", "cli", "x.sh"]).options
    directives = parse_args(["-J", "script", "--output=o.txt", "--signal=B:USR2@30"]).options
    env = {"SBATCH_JOB_NAME": "env", "SBATCH_SIGNAL": "USR1@90"}
    effective = effective_options(cli, directives, env)
    assert effective.get("job-name") == "cli"
    assert effective.get("signal") == "USR1@90"
    assert effective.get("output") == "o.txt"
    assert "open-mode" not in effective


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("B:USR1@90", ("USR1", 90, True)),
        ("USR2", ("USR2", 60, False)),
        ("SIGTERM@30", ("TERM", 30, False)),
        ("RB:10@120", ("USR1", 120, True)),
        # What Slurm 22.05's sbatch accepted and refused (checked with --test-only):
        ("b:usr1@5", ("USR1", 5, True)),
        ("B:SIGUSR1@5", ("USR1", 5, True)),
        ("B:USR1@", ("USR1", 0, True)),
        ("B:NOPE@10", None),
        ("B:USR1@70000", None),
        ("B:USR1@1x", None),
    ],
)
def test_parse_signal(value: str, expected: tuple | None) -> None:
    spec = parse_signal(value)
    if expected is None:
        assert spec is None
    else:
        assert spec is not None and (spec.signal, spec.seconds, spec.batch) == expected


def test_one_time_options_only_reach_the_first_link() -> None:
    plan = plan_for(
        "#!/bin/bash\necho hi\n",
        ["-p", "main", "--dependency=afterok:5", "--begin=now+1hour", "-H", "--time=10"],
    )
    assert plan.first_options == (
        "--job-name=job.sh",
        "-p", "main", "--dependency=afterok:5", "--begin=now+1hour", "-H", "--time=10",
    )  # fmt: skip
    assert plan.successor_options == ("--job-name=job.sh", "-p", "main", "--time=10")


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        (["-d", "afterok:5"], "dependency"), (["-dafterok:5"], "dependency"),
        (["--dependency", "afterok:5"], "dependency"), (["--dependency=afterok:5"], "dependency"),
        (["--dep=afterok:5"], "dependency"), (["--depend", "afterok:5"], "dependency"),
        (["-b", "now+1hour"], "begin"), (["-bnow+1hour"], "begin"),
        (["--begin", "now+1hour"], "begin"), (["--begin=now+1hour"], "begin"),
        (["--beg=now+1hour"], "begin"), (["-H"], "hold"), (["--hold"], "hold"), (["--ho"], "hold"),
        (["-a", "0-3"], "array"), (["-a0-3"], "array"), (["--array", "0-3"], "array"),
        (["--array=0-3"], "array"), (["--arr=0-3"], "array"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("where", ["command line", "directive"])
def test_one_time_options_in_every_spelling_reach_the_first_link_only(
    spelling: list[str], name: str, where: str
) -> None:
    if where == "command line":
        plan = plan_for("#!/bin/bash\necho hi\n", ["-p", "main", *spelling, "--time=10"])
        later = ("--job-name=job.sh", "-p", "main", "--time=10")
    else:
        plan = plan_for(f"#!/bin/bash\n#SBATCH -p main {' '.join(spelling)} --time=10\necho\n", [])
        later = ("--job-name=job.sh",)  # -p and --time stay in the header, for every link
        active = [line[len("#SBATCH ") :] for line in plan.header if line.startswith("#SBATCH ")]
        assert active == ["-p main --time=10"]
    assert [o.name for o in parse_args(plan.first_options).options].count(name) == 1
    assert plan.successor_options == later


def test_one_time_directive_is_disabled_in_the_header_and_moved_to_the_first_link() -> None:
    plan = plan_for(
        "#!/bin/bash\n#SBATCH -J name --hold\n#SBATCH --dependency=afterany:7\necho\n", []
    )
    assert plan.header == (
        "##SBATCH -J name --hold",
        "# longrun: --hold applies to the first link only (on its command line)",
        "#SBATCH -J name",
        "##SBATCH --dependency=afterany:7",
        "# longrun: --dependency=afterany:7 applies to the first link only (on its command line)",
    )
    assert plan.first_options == ("--hold", "--dependency=afterany:7")
    assert "--hold" not in plan.successor_options


def test_command_line_one_time_option_wins_over_the_directive() -> None:
    plan = plan_for("#!/bin/bash\n#SBATCH --begin=now+5\necho\n", ["--begin=now+60"])
    assert plan.first_options == ("--job-name=job.sh", "--begin=now+60")


def test_wait_and_parsable_are_handled_by_longrun_not_passed_on() -> None:
    plan = plan_for("#!/bin/bash\n#SBATCH --wait\necho\n", ["--parsable", "-W"])
    assert "--parsable" not in plan.first_options and "-W" not in plan.first_options
    assert plan.parsable
    assert plan.header[0] == "##SBATCH --wait"


def test_default_signal_and_open_mode_are_generated_as_directives() -> None:
    plan = plan_for("#!/bin/bash\necho\n", [])
    assert plan.generated_directives == ("--signal=B:USR1@120", "--open-mode=append")
    assert (plan.check_signal, plan.forward_signal, plan.step_signal_window) == ("USR1", False, 0)


def test_default_job_name_goes_on_the_command_line_never_into_a_directive() -> None:
    # A file name may hold a newline: in an #SBATCH line it would end the comment.
    name = "x\ntouch CANARY;.sh"
    plan = plan_of("#!/bin/bash\necho\n", where=WHERE, name=name)
    assert plan.first_options[0] == plan.successor_options[0] == f"--job-name={name}"
    assert not any("job-name" in d for d in plan.generated_directives)


def test_a_job_name_the_user_chose_is_not_repeated() -> None:
    plan = plan_for("#!/bin/bash\n#SBATCH -J mine\necho\n", [])
    assert plan.first_options == () and plan.successor_options == ()
    plan = plan_for("#!/bin/bash\necho\n", [], environ={"SBATCH_JOB_NAME": "env"})
    assert plan.first_options == () and plan.job_name == "env"


def test_user_batch_signal_is_forwarded() -> None:
    plan = plan_for("#!/bin/bash\n#SBATCH --signal=B:USR2@90\necho\n", [])
    assert (plan.check_signal, plan.forward_signal) == ("USR2", True)
    assert not any("--signal" in d for d in plan.generated_directives)


def test_step_only_signal_sets_a_window_and_no_trap() -> None:
    plan = plan_for("#!/bin/bash\necho\n", ["--signal=USR1@90"])
    assert (plan.check_signal, plan.forward_signal, plan.step_signal_window) == ("", False, 150)


def test_unreadable_signal_is_left_to_sbatch_with_a_warning() -> None:
    plan = plan_for("#!/bin/bash\necho\n", ["--signal=B:BOGUS"])
    assert plan.check_signal == ""
    assert any("--signal=B:BOGUS" in w for w in plan.warnings)


def test_user_open_mode_is_kept_and_truncate_warns() -> None:
    plan = plan_for("#!/bin/bash\necho\n", ["--open-mode=truncate"])
    assert "--open-mode=append" not in plan.generated_directives
    assert "--open-mode=truncate" in plan.successor_options
    assert any("truncate" in w for w in plan.warnings)


def test_open_mode_from_the_environment_counts_as_a_choice() -> None:
    plan = plan_for("#!/bin/bash\necho\n", [], {"SBATCH_OPEN_MODE": "truncate"})
    assert "--open-mode=append" not in plan.generated_directives


@pytest.mark.parametrize(
    ("text", "argv", "environ", "spec"),
    [
        ("#!/bin/bash\necho\n", ["--array=1-3"], {}, "1-3"),
        ("#!/bin/bash\n#SBATCH -a 0-9%2\necho\n", [], {}, "0-9%2"),
        ("#!/bin/bash\n#SBATCH -a 0-9\necho\n", [], {"SBATCH_ARRAY_INX": "1-2"}, "1-2"),
        ("#!/bin/bash\n#SBATCH -a 0-9\necho\n", ["-a", "4"], {"SBATCH_ARRAY_INX": "1-2"}, "4"),
    ],
)
def test_an_array_is_given_to_the_first_link_only(
    text: str, argv: list[str], environ: dict[str, str], spec: str
) -> None:
    plan = plan_for(text, argv, environ)
    assert plan.array is not None and plan.array.spec == spec
    assert [t for t in plan.first_command() if "array" in t or t == "-a"] == [f"--array={spec}"]
    assert not [t for t in plan.successor_options if "array" in t or t == "-a"]
    assert not [line for line in plan.header if line.startswith(("#SBATCH -a", "#SBATCH --array"))]
    assert plan.output_pattern == "slurm-%A_%a.out" and plan.error_pattern == ""
    assert bool(plan.array.throttle) == ("%" in spec)
    assert any("throttle" in warning for warning in plan.warnings) == ("%" in spec)


def test_an_arrays_output_patterns_are_kept_for_later_links() -> None:
    plan = plan_for("#!/bin/bash\n#SBATCH -o out_%A_%a.txt\necho\n", ["-a", "1,3", "-e", "e%a"])
    assert (plan.output_pattern, plan.error_pattern) == ("out_%A_%a.txt", "e%a")


def test_body_delimiter_avoids_lines_of_the_script() -> None:
    plan = plan_for("#!/bin/bash\ncat <<X\nLONGRUN_SCRIPT_END\nX\n", [])
    assert plan.body_delimiter == "LONGRUN_SCRIPT_END_1"


def test_first_command() -> None:
    plan = plan_for("#!/bin/bash\necho\n", ["-t", "5"])
    assert plan.first_command() == [
        "sbatch", "--parsable", "--job-name=job.sh", "-t", "5",
        "--comment=longrun:20261125-120000-abcd:1",
        "/state/chains/20261125-120000-abcd/link.sh", "--restart-count=0", "--retries=0",
    ]  # fmt: skip


def test_the_users_comment_comes_before_the_chains_tag() -> None:
    plan = plan_for("#!/bin/bash\n#SBATCH --comment='my run'\necho\n", [])
    assert plan.tag(3) == "my run longrun:20261125-120000-abcd:3"
    assert "--comment=my run longrun:20261125-120000-abcd:1" in plan.first_command()


def test_clusters_in_every_spelling_sbatch_accepts() -> None:
    for argv in (["-M", "c1"], ["--clusters=c1"], ["--cluster=c1"], ["--cluster", "c1"]):
        assert plan_for("#!/bin/bash\necho\n", argv).clusters == "c1"
    assert plan_for("#!/bin/bash\necho\n", []).clusters is None


def test_script_name_that_is_not_a_plain_file_name_becomes_script() -> None:
    for name in ("..", "-rf", "a\nb", ""):
        assert plan_of("#!/bin/bash\n", where=WHERE, name=name).script_name == "script"


def test_script_named_like_a_file_of_the_protocol_becomes_script() -> None:
    # A body written as links/<job>/claim took the successor's claim: the watcher then
    # submitted a new successor every interval (issue 25).
    for name in ("claim", "verdict", "successor", "events.jsonl", "stop_after", "sbatch.err"):
        assert plan_of("#!/bin/bash\n", where=WHERE, name=name).script_name == "script"
    assert plan_of("#!/bin/bash\n", where=WHERE, name="train.sh").script_name == "train.sh"


def test_malformed_tuning_variable_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="LONGRUN_JUDGE_SECONDS"):
        plan_for("#!/bin/bash\necho\n", [], {"LONGRUN_JUDGE_SECONDS": "soon"})


def test_the_job_side_asks_one_cluster_with_one_rpc_per_look() -> None:
    # --local spares the federation look-up; with -M the cluster is named; in a federation
    # (or when submission could not tell) the job side asks through it.
    plan = plan_of("#!/bin/bash\ntrue\n", [], where=WHERE)
    assert plan.query_args == ("--local",)
    assert replace(plan, federated=True).query_args == ()
    assert plan_of("#!/bin/bash\ntrue\n", ["-M", "other"], where=WHERE).query_args == (
        "-M",
        "other",
    )


@pytest.mark.parametrize(
    ("answer", "federated"),
    [
        (subprocess.CompletedProcess([], 0, "", ""), False),  # this cluster's answer: nothing
        (subprocess.CompletedProcess([], 0, "Federation: fed1\nSelf: c1:1.2.3.4:6817\n", ""), True),
        (SlurmCommandError(["scontrol"], "Unable to contact slurm controller", 1), True),
    ],
)
def test_submission_learns_whether_the_cluster_is_federated(
    monkeypatch: pytest.MonkeyPatch, answer: object, federated: bool
) -> None:
    def run(args: list[str], **_: object) -> object:
        assert args == ["scontrol", "show", "federation"]
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(slurm, "run", run)
    assert slurm.federated() is federated


HETJOB = (
    "#!/bin/bash\n#SBATCH -N1 --signal=B:USR2@30\n#SBATCH hetjob\n#SBATCH -N2 --signal=B:HUP@9\n"
    "srun true\n"
)
TWO_COMPONENTS = "#!/bin/bash\n#SBATCH -N1\n#SBATCH hetjob\n#SBATCH -N2\ntrue\n"


def test_a_heterogeneous_jobs_settings_are_its_first_components() -> None:
    plan = plan_for(HETJOB, [])
    # The batch script runs in the first component: its --signal is the one longrun traps.
    assert (plan.check_signal, plan.forward_signal) == ("USR2", True)
    assert plan.generated_directives == ()
    assert "--open-mode=append" in plan.successor_options
    assert not any(o.startswith("--signal") for o in plan.successor_options)
    # The header is the user's, components and all.
    assert plan.header[1:3] == ("#SBATCH hetjob", "#SBATCH -N2 --signal=B:HUP@9")


def test_longruns_own_options_go_to_the_first_component_on_the_command_line() -> None:
    plan = plan_for(
        "#!/bin/bash\n#SBATCH -N1\n#SBATCH hetjob\n#SBATCH -N2\ntrue\n", ["-p", "multi"]
    )
    assert plan.generated_directives == ()
    assert plan.successor_options[:2] == ("--signal=B:USR1@120", "--open-mode=append")
    assert plan.successor_components == ()  # components in the script: none on the command line
    command = plan.first_command()
    assert command.index("--signal=B:USR1@120") < command.index(plan.link_script)


def test_command_line_components_keep_their_options_and_lose_one_time_ones() -> None:
    argv = ["-N1", "--dependency=afterok:1", ":", "-N2", "-d", "afterok:2", "--hold", "-J", "b"]
    plan = plan_for("#!/bin/bash\ntrue\n", argv)
    assert plan.successor_options[-1] == "-N1"
    assert plan.successor_components == (":", "-N2", "-J", "b")
    first = plan.first_command()
    tag = next(w for w in first if w.startswith("--comment="))
    assert first.index(tag) < first.index(":")  # the tag in the first component
    assert first[first.index(":") :][:6] == [":", "-N2", "-d", "afterok:2", "--hold", "-J"]


def test_placement_learning_is_off_for_a_heterogeneous_job() -> None:
    wrapper = WrapperOptions(
        learning=LearningOptions(node_check="/bin/true", grow_mem_on_oom="2"),
    )
    plan = plan_for("#!/bin/bash\ntrue\n", ["--mem=1G", ":", "-N1"], wrapper=wrapper)
    assert (plan.learning.avoid_seconds, plan.learning.grow_percent) == (0, 0)
    assert plan.learning.node_check == ()
    said = " ".join(plan.warnings)
    assert "--node-check is off for a heterogeneous job" in said
    assert "--grow-mem-on-oom is off" in said
