"""Whether a state directory is visible from other nodes: read from the mount table."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from longrun import submission as submit
from longrun.chain_store import CHAIN_ID_PATTERN, StateDir, new_chain_id
from longrun.errors import StateError
from longrun.files import file_system_type, node_local

MOUNTS = """\
overlay / overlay rw,relatime 0 0
tmpfs /dev/shm tmpfs rw 0 0
/dev/sda1 /tmp ext4 rw 0 0
nfs:/home /home nfs4 rw 0 0
/dev/sdb1 /scratch\\040space lustre rw 0 0
"""


def test_the_longest_mount_point_decides() -> None:
    assert file_system_type(Path("/home/ann/.longrun"), MOUNTS) == "nfs4"
    assert file_system_type(Path("/tmp/x"), MOUNTS) == "ext4"
    assert file_system_type(Path("/scratch space/ann"), MOUNTS) == "lustre"
    assert file_system_type(Path("/opt/x"), MOUNTS) == "overlay"


def test_node_local_places() -> None:
    assert node_local(Path("/dev/shm/state"), MOUNTS) == "a tmpfs file system"
    assert node_local(Path("/tmp/state"), MOUNTS) == "a local ext4 file system under /tmp"
    assert node_local(Path("/home/ann/.longrun"), MOUNTS) is None
    assert node_local(Path("/scratch space/ann"), MOUNTS) is None
    # A local disk elsewhere may well be exported to the nodes: no warning.
    assert node_local(Path("/opt/state"), MOUNTS) is None


@pytest.mark.parametrize(
    ("hosts", "warned"),
    [("vm\nvm\n", False), ("vm\nnode7\n", True)],  # two slurmd on this machine: no warning
)
def test_the_warning_needs_another_host(
    monkeypatch: pytest.MonkeyPatch, hosts: str, warned: bool
) -> None:
    messages: list[str] = []
    monkeypatch.setattr(submit, "node_local", lambda root: "a tmpfs file system")
    monkeypatch.setattr(submit.socket, "gethostname", lambda: "vm")
    monkeypatch.setattr(
        submit.slurm, "run", lambda args, **_: subprocess.CompletedProcess(args, 0, hosts, "")
    )
    monkeypatch.setattr(submit.log, "warning", messages.append)
    submit._warn_if_node_local(Path("/dev/shm/s"), [])
    assert bool(messages) is warned
    if warned:
        assert (
            "/dev/shm/s is on a tmpfs file system, and the cluster has other hosts" in messages[0]
        )


def test_a_state_directory_created_by_another_submission_meanwhile_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight sbatch_longrun started at once on a fresh --state-dir: the ones that lose the race
    to create it use it (CI once saw one of them exit 2, "cannot create ...: File exists")."""
    root = tmp_path / "state"
    real_mkdir = Path.mkdir

    def another_process_wins(self: Path, *args: object, **kwargs: object) -> None:
        if self == root and not root.exists():
            real_mkdir(root, 0o700)  # the other submission, between our look and our mkdir
        real_mkdir(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "mkdir", another_process_wins)
    StateDir(root).ensure()
    assert (root / "chains").is_dir() and (root / "jobs").is_dir()


def test_a_state_directory_another_made_open_is_still_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Losing that race skips no check: a folder that appeared open to others is refused."""
    root = tmp_path / "state"
    real_mkdir = Path.mkdir

    def another_user_wins(self: Path, *args: object, **kwargs: object) -> None:
        if self == root and not root.exists():
            real_mkdir(root)
            root.chmod(0o777)
        real_mkdir(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "mkdir", another_user_wins)
    with pytest.raises(StateError, match="writable by other users"):
        StateDir(root).ensure()


def test_chain_ids_made_in_one_second_do_not_collide() -> None:
    """Chain ids carry 32 random bits: thirty submissions in one second (the load test does
    that) would collide one time in 300 with 16 bits."""
    ids = {new_chain_id(0.0) for _ in range(2000)}
    assert len(ids) == 2000
    assert all(CHAIN_ID_PATTERN.match(chain_id) for chain_id in ids)
    assert CHAIN_ID_PATTERN.match("20261130-120000-ab12")  # ids of older versions still name chains
