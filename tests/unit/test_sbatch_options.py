"""sbatch's argument grammar: every spelling, abbreviations, where options stop."""

from __future__ import annotations

from pathlib import Path

import pytest

from longrun.command_line import split_wrapper_args
from longrun.errors import UsageError
from longrun.sbatch_options import (
    ALIASES,
    LONG_OPTIONS,
    SHORT_OPTIONS,
    Option,
    components,
    first_component,
    parse_args,
)

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    "argv",
    [
        ["-J", "my job", "run.sh"],
        ["-Jmy job", "run.sh"],
        ["--job-name", "my job", "run.sh"],
        ["--job-name=my job", "run.sh"],
        ["--job=my job", "run.sh"],  # getopt accepts an unambiguous prefix
    ],
)
def test_job_name_in_every_spelling(argv: list[str]) -> None:
    parsed = parse_args(argv)
    assert [(o.name, o.value) for o in parsed.options] == [("job-name", "my job")]
    assert parsed.operands == ("run.sh",)


def test_options_stop_at_the_script_and_the_rest_are_its_arguments() -> None:
    parsed = parse_args(["-p", "gpu", "train.sh", "--lr", "0.1", "-J", "x", "--max-restarts", "3"])
    assert [o.name for o in parsed.options] == ["partition"]
    assert parsed.operands == ("train.sh", "--lr", "0.1", "-J", "x", "--max-restarts", "3")


def test_double_dash_ends_options() -> None:
    parsed = parse_args(["-t", "10", "--", "-weird-name.sh", "a"])
    assert parsed.operands == ("-weird-name.sh", "a")


def test_short_flags_bundle_and_a_value_taking_letter_ends_the_bundle() -> None:
    parsed = parse_args(["-HQJname", "job.sh"])
    assert [(o.name, o.value) for o in parsed.options] == [
        ("hold", None),
        ("quiet", None),
        ("job-name", "name"),
    ]


def test_value_taking_short_option_takes_the_next_token_even_if_it_looks_like_an_option() -> None:
    parsed = parse_args(["-o", "--weird", "job.sh"])
    assert parsed.options[0] == Option("output", "--weird", ("-o", "--weird"))
    assert parsed.operands == ("job.sh",)


def test_optional_values_attach_only_with_equals() -> None:
    parsed = parse_args(["--exclusive", "job.sh"])
    assert parsed.options[0].value is None
    assert parsed.operands == ("job.sh",)
    parsed = parse_args(["--exclusive=user", "--nice=10", "-koff", "job.sh"])
    assert [(o.name, o.value) for o in parsed.options] == [
        ("exclusive", "user"),
        ("nice", "10"),
        ("no-kill", "off"),
    ]


def test_the_original_tokens_are_kept() -> None:
    parsed = parse_args(["-J", "a b", "--time=5", "-c4", "job.sh"])
    assert [o.tokens for o in parsed.options] == [("-J", "a b"), ("--time=5",), ("-c4",)]


def test_ambiguous_prefix_is_refused_like_getopt() -> None:
    with pytest.raises(UsageError, match="ambiguous"):
        parse_args(["--mem-per", "1G", "job.sh"])


def test_missing_value_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="requires an argument"):
        parse_args(["--time"])
    with pytest.raises(UsageError, match="requires an argument"):
        parse_args(["-J"])


def test_flag_with_a_value_is_refused() -> None:
    with pytest.raises(UsageError, match="doesn't allow an argument"):
        parse_args(["--hold=yes", "job.sh"])


def test_unknown_option_with_equals_passes_through_for_a_newer_sbatch() -> None:
    parsed = parse_args(["--frobnicate=cpu=2", "job.sh"])
    assert parsed.options[0] == Option("frobnicate", "cpu=2", ("--frobnicate=cpu=2",))


def probed(version: str) -> dict[str, str]:
    """Name -> kind, as tests/unit/data/sbatch_options.sh read them off that version's sbatch."""
    lines = (DATA / f"sbatch_options-{version}.txt").read_text().splitlines()
    return dict(line.split() for line in lines)


def test_the_option_table_is_what_sbatch_22_05_and_24_11_know() -> None:
    known = {**probed("22.05"), **probed("24.11")}
    table = {**LONG_OPTIONS, **{alias: LONG_OPTIONS[name] for alias, name in ALIASES.items()}}
    assert table == known


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--tres-per-task", "gres/gpu:1", "job.sh"], ("tres-per-task", "gres/gpu:1")),
        (["--oom-kill-step", "job.sh"], ("oom-kill-step", None)),
        (["--tasks-per-node", "4", "job.sh"], ("ntasks-per-node", "4")),
    ],
)
def test_options_of_slurm_24_11_and_hidden_names_take_their_values(
    argv: list[str], expected: tuple[str, str | None]
) -> None:
    parsed = parse_args(argv)
    assert [(o.name, o.value) for o in parsed.options] == [expected]
    assert parsed.operands == ("job.sh",)


def test_unknown_bare_option_is_a_usage_error_with_advice() -> None:
    with pytest.raises(UsageError, match="unrecognized sbatch option '--frobnicate'"):
        parse_args(["--frobnicate", "job.sh"])
    with pytest.raises(UsageError, match="invalid sbatch option -- 'Z'"):
        parse_args(["-Z", "job.sh"])


def test_a_colon_separates_the_components_of_a_heterogeneous_job() -> None:
    parsed = parse_args(["-n1", "-J", "x", ":", "-n2", ":", "--mem=1G", "job.sh", ":"])
    groups = components(parsed.options)
    assert [[o.name for o in group] for group in groups] == [
        ["ntasks", "job-name"], ["ntasks"], ["mem"],
    ]  # fmt: skip
    assert parsed.operands == ("job.sh", ":")  # after the script: the script's own arguments
    assert first_component(parsed.options) == groups[0]


def test_no_script_leaves_no_operands() -> None:
    assert parse_args(["-J", "x"]).operands == ()


def test_every_short_option_maps_to_a_known_long_option() -> None:
    assert set(SHORT_OPTIONS.values()) <= set(LONG_OPTIONS)


WRAPPER = {
    "--max-restarts": True,
    "--use-verbosity": True,
    "--no-watch": False,
    "--detached": False,
    "--no-detached": False,
}


def test_wrapper_options_come_first_and_stop_at_the_first_other_token() -> None:
    wrapper, rest = split_wrapper_args(
        ["--max-restarts", "3", "--no-watch", "-J", "x", "--max-restarts", "5", "job.sh"],
        WRAPPER,
    )
    assert wrapper == ["--max-restarts", "3", "--no-watch"]
    assert rest == ["-J", "x", "--max-restarts", "5", "job.sh"]


def test_wrapper_option_after_the_script_goes_to_the_script() -> None:
    wrapper, rest = split_wrapper_args(["job.sh", "--max-restarts", "2"], WRAPPER)
    assert wrapper == []
    assert rest == ["job.sh", "--max-restarts", "2"]


def test_wrapper_option_with_equals() -> None:
    wrapper, rest = split_wrapper_args(["--use-verbosity=SILENT", "--detached", "a.sh"], WRAPPER)
    assert wrapper == ["--use-verbosity=SILENT", "--detached"]
    assert rest == ["a.sh"]
