"""A chain that learns: the options checked at submission, and the job side's learning run
whole against stand-in Slurm commands (the end-to-end proofs are in e2e/test_learning_chain.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from jobside import JobSide

from longrun import protocol, states
from longrun.command_line import split_wrapper_args
from longrun.errors import UsageError
from longrun.learning import (
    LearningOptions,
    duration_seconds,
    grow_setting,
    learning_plan,
    memory_mb,
)
from longrun.plan import WrapperOptions


# --- checked at submission ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90 * 60), ("1:30", 90), ("2:00:00", 7200), ("1-12", 36 * 3600),
        ("1-00:30", 86400 + 1800), ("1-00:00:10", 86410), ("24h", 86400), ("30m", 1800),
        ("45s", 45), ("7d", 7 * 86400),
    ],
)  # fmt: skip
def test_durations_in_slurms_words_or_with_a_unit(text: str, seconds: int) -> None:
    assert duration_seconds(text, "--total-time") == seconds


@pytest.mark.parametrize("text", ["", "0", "x", "1:2:3:4", "-5", "1h30", "0h", "1.5h"])
def test_what_is_not_a_duration_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="is not a duration") as caught:
        duration_seconds(text, "--total-time")
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "mb"), [("100", 100), ("100M", 100), ("64G", 65536), ("1T", 1048576), ("2048K", 2)]
)
def test_memory_sizes_as_slurm_reads_them(text: str, mb: int) -> None:
    assert memory_mb(text, "--grow-mem-on-oom") == mb


def test_growth_factor_and_maximum() -> None:
    assert grow_setting("2") == (200, 0)
    assert grow_setting("1.5:64G") == (150, 65536)
    for bad in ("1", "0.5", "x", "2:lots", "2:0"):
        with pytest.raises(UsageError):
            grow_setting(bad)


def test_idle_links_are_counted_only_with_a_progress_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="needs --progress-file"):
        learning_plan(LearningOptions(max_idle_links=2), {}, "", str(tmp_path), {})
    plan = learning_plan(LearningOptions(), {}, str(tmp_path / "ckpt"), str(tmp_path), {})
    assert plan.max_idle_links == 3
    assert learning_plan(LearningOptions(), {}, "", str(tmp_path), {}).max_idle_links == 0


def test_defaults_and_the_users_own_placement(tmp_path: Path) -> None:
    effective = {"exclude": "vm3", "nodelist": "vm", "partition": "multi"}
    plan = learning_plan(LearningOptions(), effective, "", str(tmp_path), {})
    assert (plan.avoid_seconds, plan.user_exclude, plan.user_nodelist, plan.partition) == (
        86400, "vm3", "vm", "multi",
    )  # fmt: skip
    off = learning_plan(LearningOptions(avoid_failed_nodes=None), {}, "", str(tmp_path), {})
    assert off.avoid_seconds == 0
    listed = learning_plan(LearningOptions(), {"nodelist": "./nodes.txt"}, "", "/", {})
    assert listed.user_nodelist == ""  # a file of nodes is sbatch's to read


def test_a_node_check_that_cannot_run_is_refused_at_submission(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--node-check: 'no-such-check' is not an executable"):
        learning_plan(
            LearningOptions(node_check="no-such-check"), {}, "", str(tmp_path), {"PATH": "/x"}
        )
    plan = learning_plan(
        LearningOptions(node_check="true --flag"), {}, "", str(tmp_path), {"PATH": "/usr/bin"}
    )
    assert plan.node_check == ("/usr/bin/true", "--flag")


def test_avoid_failed_nodes_takes_its_value_after_an_equals_sign_only() -> None:
    takes = {"--avoid-failed-nodes": False, "--max-restarts": True}
    assert split_wrapper_args(["--avoid-failed-nodes", "job.sh", "x"], takes) == (
        ["--avoid-failed-nodes"], ["job.sh", "x"],
    )  # fmt: skip
    assert split_wrapper_args(["--avoid-failed-nodes=2h", "job.sh"], takes)[0] == [
        "--avoid-failed-nodes=2h"
    ]


# --- the job side ---------------------------------------------------------------------------
def side_with(
    tmp_path: Path, max_restarts: int = 999, retry_failed: int = 0, **learning: object
) -> JobSide:
    progress = learning.pop("progress_file", None)
    wrapper = WrapperOptions(
        learning=LearningOptions(**learning),  # type: ignore[arg-type]
        progress_file=progress,  # type: ignore[arg-type]
        max_restarts=max_restarts,
        retry_failed=retry_failed,
    )
    return JobSide(tmp_path, wrapper)


def already_avoided(side: JobSide, node: str, cause: str = "NODE_FAIL") -> None:
    """An earlier link (job 100) of the chain recorded that the chain avoids `node`."""
    folder = side.chain.link_dir("100")
    folder.mkdir(parents=True)
    (folder / "avoid").write_text(f"{node} {int(time.time()) + 3600} {cause}\n")


def recorded_link(side: JobSide, job: str, learned: str, verdict: str = "continue") -> None:
    """An earlier link of the chain as it left its folder: its `learned` file and verdict."""
    folder = side.chain.link_dir(job)
    folder.mkdir(parents=True)
    (folder / "learned").write_text(learned)
    (folder / "verdict").write_text(verdict + "\n")


def on_nodes(*nodes: str, **more: str) -> dict[str, str]:
    return {"SLURM_JOB_NODELIST": ",".join(nodes), "SLURM_JOB_NUM_NODES": "1", **more}


def ended(side: JobSide) -> str:
    path = side.chain.path / "ended"
    return path.read_text().strip() if path.exists() else ""


def test_a_link_on_the_node_its_predecessor_lost_hands_over_for_free(tmp_path: Path) -> None:
    side = side_with(tmp_path)
    side.partition_has("vm", "vm2")
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("200", 0, slurm_env=on_nodes("vm"))
    side.slurm_shows("200", states.NODE_FAIL)
    side.run("300", 1, "200", slurm_env=on_nodes("vm"))
    assert side.bodies_run() == ["200"]  # not on vm again
    (avoided,) = side.events(protocol.NODES_AVOIDED)
    assert (avoided["job"], avoided["nodes"], avoided["cause"]) == ("300", "vm", states.NODE_FAIL)
    (handed,) = side.events(protocol.HANDED_OVER)
    assert handed["reason"] == "node vm is avoided by this chain"
    successor = side.submitted()[-1]
    assert "--exclude=vm " in successor
    assert "--free-links=1" in successor  # not counted against --max-restarts
    assert (side.chain.link_dir("300") / "verdict").read_text().strip() == "continue"
    side.slurm_shows("300", states.COMPLETED)
    side.run("301", 2, "300", arguments=("--free-links=1",), slurm_env=on_nodes("vm2"))
    assert side.bodies_run() == ["200", "301"]
    assert "--exclude=vm " in side.submitted()[-1]  # still avoided, merged from every link


def test_the_users_exclude_is_kept_with_the_avoided_nodes(tmp_path: Path) -> None:
    side = JobSide(tmp_path, WrapperOptions(), argv=["--exclude=vm9"])
    side.partition_has("vm", "vm2", "vm9")
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("200", 0, slurm_env=on_nodes("vm"))
    side.slurm_shows("200", states.NODE_FAIL)
    side.run("300", 1, "200", slurm_env=on_nodes("vm2"))
    assert side.bodies_run() == ["200", "300"]
    assert "--exclude=vm9,vm " in side.submitted()[-1]


@pytest.mark.parametrize(
    ("partition", "why"),
    [
        (("vm",), "only 0 node(s) of partition"),
        (None, "sinfo did not answer"),
    ],
)
def test_an_exclusion_that_would_leave_no_place_to_run_is_dropped(
    tmp_path: Path, partition: tuple[str, ...] | None, why: str
) -> None:
    side = side_with(tmp_path)
    if partition:
        side.partition_has(*partition)
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("200", 0, slurm_env=on_nodes("vm"))
    side.slurm_shows("200", states.NODE_FAIL)
    side.run("300", 1, "200", slurm_env=on_nodes("vm"))
    assert side.bodies_run() == ["200", "300"]  # runs where it can
    (dropped,) = side.events(protocol.AVOID_DROPPED)
    assert dropped["nodes"] == "vm" and why in dropped["reason"]
    assert "--exclude" not in side.submitted()[-1]
    assert not side.events(protocol.HANDED_OVER)


def test_nodes_of_the_users_nodelist_are_never_excluded(tmp_path: Path) -> None:
    side = JobSide(tmp_path, WrapperOptions(), argv=["--nodelist=vm"])
    side.partition_has("vm", "vm2")
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("200", 0, slurm_env=on_nodes("vm"))
    side.slurm_shows("200", states.NODE_FAIL)
    side.run("300", 1, "200", slurm_env=on_nodes("vm"))
    assert side.bodies_run() == ["200", "300"]
    (dropped,) = side.events(protocol.AVOID_DROPPED)
    assert "your --nodelist asks for them" in dropped["reason"]


def test_a_link_that_fails_soon_after_its_start_blames_its_node(tmp_path: Path) -> None:
    side = JobSide(tmp_path, WrapperOptions(retry_failed=1))
    side.partition_has("vm", "vm2")
    side.body_exits(3)
    side.run("200", 0, slurm_env=on_nodes("vm"))
    side.slurm_shows("200", states.FAILED)
    side.body_exits(0)
    side.run("300", 1, "200", slurm_env=on_nodes("vm2"))
    (avoided,) = side.events(protocol.NODES_AVOIDED)
    assert avoided["nodes"] == "vm" and avoided["cause"].startswith("failed_after_")
    assert side.bodies_run() == ["200", "300"]


def test_running_out_of_memory_is_not_the_nodes_fault(tmp_path: Path) -> None:
    side = side_with(tmp_path, grow_mem_on_oom="2")
    side.partition_has("vm", "vm2")
    side.body_exits(137)
    side.run("200", 0, slurm_env=on_nodes("vm", SLURM_MEM_PER_NODE="100"))
    side.slurm_shows("200", states.OUT_OF_MEMORY)
    side.run("300", 1, "200", slurm_env=on_nodes("vm", SLURM_MEM_PER_NODE="100"))
    assert not side.events(protocol.NODES_AVOIDED)


def test_a_failed_node_check_moves_the_chain_without_running_the_script(tmp_path: Path) -> None:
    check = tmp_path / "check.sh"
    check.write_text(
        '#!/bin/bash\necho "checked $SLURMD_NODENAME" >&2\n[ "$SLURMD_NODENAME" != vm ]\n'
    )
    check.chmod(0o755)
    side = side_with(tmp_path, node_check=str(check))
    side.partition_has("vm", "vm2")
    link = side.run("200", 0, slurm_env=on_nodes("vm", SLURMD_NODENAME="vm"))
    assert "checked vm" in link.stderr  # its output goes to the job's log
    assert side.bodies_run() == []
    (failed,) = side.events(protocol.NODE_CHECK_FAILED)
    assert (failed["nodes"], failed["exit_code"]) == ("vm", "1")
    (avoided,) = side.events(protocol.NODES_AVOIDED)
    assert avoided["cause"] == "node_check"
    assert "--exclude=vm " in side.submitted()[-1]
    assert ended(side) == ""
    side.slurm_shows("200", states.COMPLETED)
    side.run("300", 1, "200", arguments=("--free-links=1",), slurm_env=on_nodes("vm2"))
    assert side.bodies_run() == ["300"]
    assert ended(side) == states.CHAIN_COMPLETED


def test_after_running_out_of_memory_the_next_link_asks_for_more(tmp_path: Path) -> None:
    side = side_with(tmp_path, grow_mem_on_oom="2:300M")
    side.body_exits(137)
    side.run("200", 0, slurm_env={"SLURM_MEM_PER_NODE": "100"})
    assert ended(side) == ""  # the next link reads Slurm's record
    assert not side.calls("scancel")
    side.slurm_shows("200", states.OUT_OF_MEMORY)
    side.run("300", 1, "200", slurm_env={"SLURM_MEM_PER_NODE": "100"})
    assert side.bodies_run() == ["200"]
    (grown,) = side.events(protocol.MEMORY_GROWN)
    assert (grown["option"], grown["before"], grown["after"]) == ("mem", "100", "200")
    successor = side.submitted()[-1]
    assert "--mem=200M " in successor and "--memory=mem=200" in successor
    assert "--free-links=1" in successor
    # Later links keep asking for it.
    side.slurm_shows("300", states.COMPLETED)
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("301", 2, "300", arguments=("--memory=mem=200", "--free-links=1"),
             slurm_env={"SLURM_MEM_PER_NODE": "200"})  # fmt: skip
    assert side.bodies_run() == ["200", "301"]
    assert "--mem=200M " in side.submitted()[-1]


def test_a_step_that_ran_out_of_memory_is_the_links_own_verdict(tmp_path: Path) -> None:
    side = side_with(tmp_path, grow_mem_on_oom="1.5")
    side.body_exits(1)  # srun's exit status; Slurm records the step, the job ends FAILED
    (side.bin / "sacct-200").write_text("COMPLETED\nOUT_OF_MEMORY\nFAILED\n")
    side.run("200", 0, slurm_env={"SLURM_MEM_PER_CPU": "1000"})
    (verdict,) = side.events(protocol.VERDICT_RECORDED)
    assert verdict["verdict"] == states.VERDICT_OUT_OF_MEMORY
    side.slurm_shows("200", states.FAILED)
    side.run("300", 1, "200", slurm_env={"SLURM_MEM_PER_CPU": "1000"})
    assert "--mem-per-cpu=1500M " in side.submitted()[-1]


@pytest.mark.parametrize(
    ("grow", "memory", "why"),
    [
        ("2:100M", "100", "with --mem=100M, the most --grow-mem-on-oom allows"),
        ("2", "0", "Slurm gives the job no memory size to grow from (give --mem"),
    ],
)
def test_a_chain_whose_memory_cannot_grow_ends_saying_why(
    tmp_path: Path, grow: str, memory: str, why: str
) -> None:
    side = side_with(tmp_path, grow_mem_on_oom=grow)
    side.body_exits(137)
    side.run("200", 0, slurm_env={"SLURM_MEM_PER_NODE": memory})
    side.slurm_shows("200", states.OUT_OF_MEMORY)
    side.run("300", 1, "200", slurm_env={"SLURM_MEM_PER_NODE": memory})
    assert ended(side) == states.CHAIN_FAILED
    (end,) = side.events(protocol.CHAIN_ENDED)
    assert why in end["reason"]


def test_without_growth_running_out_of_memory_ends_the_chain_with_a_hint(tmp_path: Path) -> None:
    side = JobSide(tmp_path, WrapperOptions(retry_failed=1))
    side.body_exits(1)
    side.run("200", 0)  # failed: a retry is left
    side.slurm_shows("200", states.OUT_OF_MEMORY)
    (side.bin / "sacct-300").write_text("OUT_OF_MEMORY\n")  # the step it ran, as Slurm records it
    side.run("300", 1, "200")
    assert side.events(protocol.RETRY)  # a retry, as for any failure
    assert ended(side) == states.CHAIN_FAILED
    (end,) = side.events(protocol.CHAIN_ENDED)
    assert end["reason"] == (
        "the script failed (exit 1): it ran out of memory (ask for more memory with --mem, or "
        "let the chain grow it: --grow-mem-on-oom 2)"
    )


def test_a_link_killed_for_its_memory_ends_the_chain_with_the_hint(tmp_path: Path) -> None:
    side = JobSide(tmp_path)
    side.body_runs('kill -9 "$PPID"')  # the whole link killed: no verdict
    side.run("200", 0)
    side.slurm_shows("200", states.OUT_OF_MEMORY)
    side.run("300", 1, "200")
    assert side.bodies_run() == ["200"]
    assert ended(side) == states.CHAIN_FAILED
    assert "--grow-mem-on-oom 2" in side.events(protocol.CHAIN_ENDED)[0]["reason"]


def test_links_without_progress_end_the_chain(tmp_path: Path) -> None:
    progress = tmp_path / "step"
    side = side_with(tmp_path, progress_file=str(progress), max_idle_links=2)
    side.body_runs(f"echo 1 > {progress}")
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("200", 0)
    side.slurm_shows("200", states.COMPLETED)
    side.body_runs("true")  # no progress from here on
    side.run("300", 1, "200")
    assert ended(side) == ""
    side.slurm_shows("300", states.COMPLETED)
    side.run("301", 2, "300")
    assert ended(side) == states.CHAIN_NO_PROGRESS
    (end,) = side.events(protocol.CHAIN_ENDED)
    assert "no progress in 2 links" in end["reason"]
    assert side.calls("scancel")  # the successor goes
    looks = [(e["job"], e["at"], e["value"], e["idle"]) for e in side.events(protocol.PROGRESS)]
    assert looks == [
        ("200", "end", "1", "0"),
        ("300", "start", "1", "0"),
        ("300", "end", "1", "1"),
        ("301", "start", "1", "1"),
        ("301", "end", "1", "2"),
    ]


def test_a_killed_link_without_progress_counts_too(tmp_path: Path) -> None:
    progress = tmp_path / "step"
    side = side_with(tmp_path, progress_file=str(progress), max_idle_links=2)
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("200", 0)
    side.slurm_shows("200", states.COMPLETED)
    side.body_runs('kill -9 "$PPID"')  # the link dies with its script: no verdict, no look
    side.run("300", 1, "200")
    side.slurm_shows("300", states.TIMEOUT)
    side.body_runs("true")
    side.run("301", 2, "300")
    assert side.bodies_run() == ["200", "300"]
    assert ended(side) == states.CHAIN_NO_PROGRESS


def test_the_last_of_the_time_budget_cuts_the_time_limit_and_ends_the_chain(
    tmp_path: Path,
) -> None:
    side = side_with(tmp_path, total_time="2m")
    now = int(time.time())
    recorded_link(side, "200", f"started={now - 100}\nended={now - 50}\nused=9\n")
    side.slurm_shows("200", states.COMPLETED)
    side.body_runs("sleep 2")
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    side.run("300", 1, "200", slurm_env={"SLURM_JOB_END_TIME": str(now + 3600)})
    assert "scontrol update JobId=300 TimeLimit=1" in side.calls("scontrol")
    (cut,) = side.events(protocol.TIME_CUT)
    assert (cut["used"], cut["total"], cut["limit"]) == ("59", "120", "1")
    assert side.bodies_run() == ["300"]
    assert ended(side) == states.CHAIN_TIME_BUDGET  # 61 s of 120 s: less than a minute left
    assert side.calls("scancel")


def test_a_link_that_finds_the_budget_used_runs_nothing(tmp_path: Path) -> None:
    side = side_with(tmp_path, total_time="2m")
    now = int(time.time())
    recorded_link(side, "200", f"nodes=vm\nstarted={now - 200}\nended={now - 100}\nused=30\n")
    side.slurm_shows("200", states.COMPLETED)
    side.run("300", 1, "200")
    assert side.bodies_run() == []
    assert ended(side) == states.CHAIN_TIME_BUDGET
    assert "ran 0:02 h of --total-time 0:02 h" in side.events(protocol.CHAIN_ENDED)[0]["reason"]
    assert not side.submitted()


def test_every_link_knows_when_slurm_will_end_it(tmp_path: Path) -> None:
    side = JobSide(tmp_path)
    side.body_runs(f'echo "$SLURM_LONGRUN_DEADLINE" >> {tmp_path}/deadline')
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    end_time = str(int(time.time()) + 7200)
    side.run("200", 0, slurm_env={"SLURM_JOB_END_TIME": end_time})
    side.slurm_shows("200", states.COMPLETED)
    before = int(time.time())
    side.run("300", 1, "200")  # no SLURM_JOB_END_TIME: from scontrol (1 h limit, 5 s run)
    first, second = (tmp_path / "deadline").read_text().split()
    assert first == end_time
    assert before + 3595 - 2 <= int(second) <= int(time.time()) + 3595


def test_a_killed_links_run_time_comes_from_slurms_record(tmp_path: Path) -> None:
    side = side_with(tmp_path, total_time="1h")
    started = int(time.mktime(time.strptime("2026-11-30T10:00:00", "%Y-%m-%dT%H:%M:%S")))
    recorded_link(side, "200", f"nodes=vm\nstarted={started}\nused=0\n", verdict="")  # killed
    side.slurm_shows("200", states.TIMEOUT)  # StartTime 10:00, EndTime 11:00
    side.run("300", 1, "200")
    assert side.bodies_run() == []
    (end,) = side.events(protocol.CHAIN_ENDED)
    assert end["state"] == states.CHAIN_TIME_BUDGET
    assert "the links ran 1:00 h of --total-time 1:00 h" in end["reason"]


def test_site_settings_for_learning_are_read_at_submission(tmp_path: Path) -> None:
    side = JobSide(
        tmp_path, settings={"LONGRUN_MAX_HANDOVERS": "2", "LONGRUN_FAST_FAIL_SECONDS": "600"}
    )
    script = side.chain.link_script.read_text()
    assert "LONGRUN_FAST_FAIL_SECONDS=600 " in script and "LONGRUN_MAX_HANDOVERS=2\n" in script
    (tmp_path / "other").mkdir()
    with pytest.raises(UsageError, match="LONGRUN_MAX_HANDOVERS='many' is not a whole number"):
        JobSide(tmp_path / "other", settings={"LONGRUN_MAX_HANDOVERS": "many"})


def test_a_previous_link_without_a_record_leaves_the_budget_to_the_links_on_record(
    tmp_path: Path,
) -> None:
    side = side_with(tmp_path, total_time="2m")
    now = int(time.time())
    recorded_link(side, "100", f"started={now - 500}\nended={now - 400}\nused=0\n")
    side.previous_verdict("200", "continue")  # it never got as far as writing its record
    side.slurm_shows("200", states.COMPLETED)
    side.run("300", 1, "200")
    (warning,) = side.events(protocol.WARNING)
    assert "the previous link left no record" in warning["message"]
    (end,) = side.events(protocol.CHAIN_ENDED)
    assert "the links ran 0:01 h of --total-time 0:02 h" in end["reason"]  # job 100's 100 s
