"""A successor request: what a link that may not submit leaves for a keeper on a login node.

The link builds its successor's sbatch arguments and environment with the job side's own code
(lr_successor_command) and writes them into `links/<job>/request` (protocol.REQUEST_FORMAT);
the keeper and the watcher's repair submit exactly that, so a successor is built in one place.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from . import log, protocol, slurm
from .chain_store import ChainFolder
from .files import read_regular

REQUEST_LIMIT = 4 << 20  # bytes: a request is sbatch's arguments and a small environment
WAIT_ON_LINK = "--dependency=afterany:"  # lr_successor_command's wait on the link itself


@dataclass(frozen=True)
class Request:
    """A link's successor, as the link built it: run `sbatch ARGUMENTS` in CWD with ENV."""

    umask: int
    cwd: str
    env: dict[str, str]
    arguments: tuple[str, ...]

    def without_dependency(self) -> tuple[str, ...]:
        """The arguments once the link has ended: nothing to wait for (Slurm may have
        forgotten the job, and then refuses a dependency on it). The link's wait is the only
        dependency a request holds (the user's is for the first link only); an array
        element's first link waits as ARRAYJOB_TASK, not by its own job id."""
        return tuple(a for a in self.arguments if not a.startswith(WAIT_ON_LINK))

    def carries(self, tag: str) -> bool:
        """Whether the successor is tagged as the event that asked for it says: the keeper
        looks for that tag before it submits, so a request without it could be queued twice."""
        return any(a.startswith("--comment=") and a.endswith(tag) for a in self.arguments)


def parse_request(data: bytes) -> Request:
    """A request file (protocol.REQUEST_FORMAT); ValueError if it is not one."""
    fields = data.decode("utf-8", errors="surrogateescape").split("\0")
    if len(fields) < 5 or fields[-1] != "" or fields[0] != protocol.REQUEST_FORMAT:
        raise ValueError("not a longrun request")
    umask_text, cwd, count_text = fields[1:4]
    if not (umask_text.isdigit() and count_text.isdigit() and cwd.startswith("/")):
        raise ValueError("a damaged longrun request")
    count = int(count_text)
    entries, arguments = fields[4 : 4 + count], fields[4 + count : -1]
    if len(entries) != count or not arguments:
        raise ValueError("a damaged longrun request")
    env = {}
    for entry in entries:
        name, sep, value = entry.partition("=")
        if sep and name:
            env[name] = value
    return Request(int(umask_text, 8) & 0o777, cwd, env, tuple(arguments))


def read_request(folder: ChainFolder, job_id: str, name: str = protocol.REQUEST) -> Request | None:
    """The link's request (or, name=COMMAND, the successor command it submitted itself), read
    from the checked chain folder (ChainFolder.held), or None if it is missing or damaged (said
    in the log). A folder that is not safe raises StateError."""
    if not job_id.isdigit():
        return None
    relative = f"{protocol.LINKS}/{job_id}/{name}"
    with folder.held() as handle:
        try:
            return parse_request(read_regular(relative, limit=REQUEST_LIMIT, dir_fd=handle))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("chain {}: cannot use {}: {}", folder.chain_id, relative, exc)
            return None


def submit_folder(path: str) -> str:
    """Where sbatch runs, as the link does (`cd "$LONGRUN_SUBMIT_DIR" || cd /`): a folder
    removed since is no reason to stop the chain."""
    return path if path and os.path.isdir(path) else "/"


def submit_request(request: Request, arguments: Sequence[str]) -> str:
    """sbatch (of the keeper's own PATH) with the link's arguments, in its folder, with its
    environment and umask, plus the keeper's SLURM_CONF (it talks to the same cluster)."""
    env = dict(request.env)
    if os.environ.get("SLURM_CONF"):
        env["SLURM_CONF"] = os.environ["SLURM_CONF"]
    before = os.umask(request.umask)
    try:
        return slurm.sbatch(arguments, cwd=submit_folder(request.cwd), env=env, timeout=60)
    finally:
        os.umask(before)
