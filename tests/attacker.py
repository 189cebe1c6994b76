"""Another user on the same machine, for tests that attack a chain as users of a shared cluster
could (tests/unit/test_security.py): `nobody`, from a forked child of the root test process."""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable
from pathlib import Path

import pytest

ATTACKER = "nobody"


def attacker_ids() -> tuple[int, int]:
    entry = pwd.getpwnam(ATTACKER)
    return entry.pw_uid, entry.pw_gid


def as_attacker(action: Callable[[], None]) -> None:
    """Run `action` as the attacker; fail the test if it raised."""
    if os.getuid() != 0:
        pytest.fail("these tests need root, to act as a second user")
    uid, gid = attacker_ids()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            action()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"the attack failed to run as {ATTACKER}"


def shared_folder(path: Path, mode: int) -> Path:
    """A folder both users can write to (a group project folder), with this mode."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    let_attacker_in(path.parent)
    return path


def let_attacker_in(path: Path) -> None:
    """The attacker may enter `path` and the folders above it (pytest's are root's, 0700)."""
    for folder in (path, *path.parents):
        if folder in (Path("/tmp"), Path("/")):
            break
        folder.chmod(folder.stat().st_mode | 0o011)
