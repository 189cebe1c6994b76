"""Scripts that continue themselves under plain sbatch: recognised, with a warning."""

from __future__ import annotations

import pytest

from longrun.script_checks import self_continuing

LIGHTNING_STYLE = """#!/bin/bash
#SBATCH --signal=B:USR1@90
#SBATCH --requeue
requeue_job() {
    echo "caught USR1: requeueing"
    scontrol requeue $SLURM_JOB_ID
}
trap requeue_job USR1
srun python train.py &
wait
"""


@pytest.mark.parametrize(
    ("script", "line", "what"),
    [
        (LIGHTNING_STYLE, 8, "requeues"),
        ("#!/bin/bash\ntrap 'sbatch $0; exit 0' USR1 TERM\nsleep 1000 & wait\n", 2, "resubmits"),
        ('#!/bin/bash\ntrap "scontrol requeue ${SLURM_JOB_ID}" SIGUSR1\nwait\n', 2, "requeues"),
        ("#!/bin/bash\nfunction again {\n  sbatch job.sh\n}\ntrap again TERM\n", 5, "resubmits"),
    ],
)
def test_a_trap_that_continues_the_job_is_recognised(script: str, line: int, what: str) -> None:
    (warning,) = self_continuing(script)
    assert warning.startswith(f"line {line}: your trap {what}")
    assert warning.endswith("remove the trap")


@pytest.mark.parametrize(
    "script",
    [
        "#!/bin/bash\ntrap 'echo saving; touch ckpt' USR1\n"
        "sbatch --dependency=afterok:$SLURM_JOB_ID post.sh\n",
        "#!/bin/bash\n# trap 'sbatch $0' USR1 is what we used to do\nsrun a.out\n",
        "#!/bin/bash\ncleanup() { rm -f tmp; }\ntrap cleanup EXIT\nscontrol show job 1\n",
    ],
)
def test_other_traps_and_pipelines_are_left_alone(script: str) -> None:
    assert self_continuing(script) == []
