"""Mail that follows the chain, not its links.

With plain sbatch, `--mail-type=END` on a chain of 40 links sends 40 mails. longrun asks Slurm
for BEGIN (and the other kinds that concern one submission) on the first link only, for no mail
on later links, and lets the link that ends the chain ask for the END mail of its own job
(`scontrol update JobId=... MailType=END`): one mail when the chain ends. FAIL alone mails
only when the chain does not complete.
"""

from __future__ import annotations

from dataclasses import dataclass

# What sbatch's ALL means (sbatch(1)).
ALL = ("BEGIN", "END", "FAIL", "INVALID_DEPEND", "REQUEUE", "STAGE_OUT")
AT_CHAIN_END = ("END", "FAIL")
# Kinds that would come once per link; they are left out rather than sent for every link.
PER_LINK = ("TIME_LIMIT", "TIME_LIMIT_90", "TIME_LIMIT_80", "TIME_LIMIT_50", "ARRAY_TASKS")


@dataclass(frozen=True)
class MailPlan:
    first: str | None  # --mail-type of the first link (None: the user asked for no mail)
    on_end: bool  # END asked: mail when the chain ends, however it ends
    on_fail: bool  # FAIL asked: mail when the chain ends without completing

    @property
    def wanted(self) -> bool:
        return self.first is not None


def mail_plan(value: str | None) -> MailPlan:
    """From the effective --mail-type value (None when not given)."""
    kinds = [kind.strip().upper() for kind in (value or "").split(",") if kind.strip()]
    if not kinds or kinds == ["NONE"]:
        return MailPlan(None, False, False)
    expanded = {k for kind in kinds for k in (ALL if kind == "ALL" else (kind,))}
    first = sorted(expanded - set(AT_CHAIN_END) - set(PER_LINK) - {"NONE"})
    return MailPlan(",".join(first) or "NONE", "END" in expanded, "FAIL" in expanded)
