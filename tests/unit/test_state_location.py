"""Whether a state directory is visible from other nodes: read from the mount table."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from longrun import submission as submit
from longrun.chain_store import file_system_type, node_local

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
