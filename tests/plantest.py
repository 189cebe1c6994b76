"""Plans for unit tests: a script's text and sbatch arguments through longrun's own planner."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from longrun.batch_script import UserScript, wrap_script
from longrun.plan import ChainLocation, LinkPlan, WrapperOptions, build_plan
from longrun.sbatch_options import parse_args


def plan_of(
    text: str,
    argv: Sequence[str] = (),
    script_args: Sequence[str] = (),
    *,
    where: ChainLocation,
    name: str = "job.sh",
    wrapper: WrapperOptions | None = None,
    environ: dict[str, str] | None = None,
) -> LinkPlan:
    """The plan for script `text` named `name` (or `--wrap=CMD`) with sbatch options `argv`."""
    if text.startswith("--wrap="):
        script = wrap_script(text[len("--wrap=") :])
    else:
        script = UserScript(text, name, name)
    args = parse_args(list(argv))
    return build_plan(wrapper or WrapperOptions(), args, script, script_args, where, environ or {})


def chain_location(tmp_path: Path, slurm_bin_dir: str) -> ChainLocation:
    """A chain folder (with links/, a link.sh and the state directory's jobs/) under tmp_path."""
    chain = tmp_path / "state" / "chains" / "20261125-120000-abcd"
    (chain / "links").mkdir(parents=True, exist_ok=True)
    (chain.parent.parent / "jobs").mkdir(exist_ok=True)
    (chain / "link.sh").touch(mode=0o700)  # rewritten by tests that run it
    return ChainLocation(
        chain_id=chain.name,
        chain_dir=str(chain),
        state_dir=str(chain.parent.parent),
        submit_dir=str(tmp_path),
        slurm_bin_dir=slurm_bin_dir,
    )
