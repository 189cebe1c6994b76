"""Mail that follows the chain: what the first link asks for, and what the chain's end asks."""

from __future__ import annotations

import pytest

from longrun.mail import MailPlan, mail_plan
from longrun.plan import ChainLocation
from plantest import plan_of

WHERE = ChainLocation("20261125-120000-abcd", "/s/chains/c", "/s", "/work", "/usr/bin")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, MailPlan(None, False, False)),
        ("NONE", MailPlan(None, False, False)),
        ("ALL", MailPlan("BEGIN,INVALID_DEPEND,REQUEUE,STAGE_OUT", True, True)),
        ("begin,end", MailPlan("BEGIN", True, False)),
        ("FAIL", MailPlan("NONE", False, True)),
        ("END,TIME_LIMIT_90", MailPlan("NONE", True, False)),  # per-link kinds are left out
    ],
)
def test_mail_plan(value: str | None, expected: MailPlan) -> None:
    assert mail_plan(value) == expected


def test_the_users_mail_type_leaves_the_header_and_every_command_line() -> None:
    # Slurm adds up every --mail-type it is given: the user's must not reach any link.
    script = "#!/bin/bash\n#SBATCH --mail-type=ALL -t 5\n#SBATCH --mail-user=me@x\necho\n"
    plan = plan_of(script, ["--mail-type=END"], where=WHERE)
    assert "#SBATCH -t 5" in plan.header and "##SBATCH --mail-type=ALL -t 5" in plan.header
    assert "#SBATCH --mail-user=me@x" in plan.header
    assert [o for o in plan.first_options if "mail-type" in o] == ["--mail-type=NONE"]
    assert not [o for o in plan.successor_options if "mail-type" in o]
    assert (plan.mail.on_end, plan.mail.on_fail) == (True, False)
