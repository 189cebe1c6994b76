"""Files that other writers may have put in our way: read regular files only, never through a
symbolic link or waiting on a FIFO, at most FILE_LIMIT bytes; write whole files or nothing, by
rename or hard link (atomic on NFS too); and where a folder lives (a node-local file system?).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

# A chain folder's files are written by its jobs, which run the user's code: a reader takes
# none of them on trust. It reads regular files only, never through a symbolic link (which
# could point at /dev/zero or at files elsewhere), never waiting on a FIFO, and at most
# FILE_LIMIT bytes of each: a chain of a thousand links writes a few MB of events in all, so
# 64 MiB in one file is damage, and reading it whole could exhaust memory.
FILE_LIMIT = 64 << 20
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
FILE_KINDS = {
    stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a device", stat.S_IFBLK: "a device",
}  # fmt: skip


def open_regular(path: str, dir_fd: int | None = None) -> int:
    """A descriptor to read the regular file at `path` (in the folder `dir_fd`, if given); an
    OSError (never a wait) for a symbolic link, a FIFO, a device or a folder."""
    try:
        fd = os.open(path, READ_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, "a symbolic link, not followed", path) from None
        raise
    kind = stat.S_IFMT(os.fstat(fd).st_mode)
    if kind != stat.S_IFREG:
        os.close(fd)
        raise OSError(errno.EINVAL, f"{FILE_KINDS.get(kind, 'not a file')}, not read", path)
    return fd


def read_regular(
    path: str, offset: int = 0, limit: int = FILE_LIMIT, dir_fd: int | None = None
) -> bytes:
    """The bytes of a regular file (see open_regular) from the offset on, up to byte `limit`."""
    fd = open_regular(path, dir_fd)
    try:
        if offset:
            os.lseek(fd, offset, os.SEEK_SET)
        parts, left = [], limit - offset
        while left > 0 and (part := os.read(fd, min(left, 1 << 20))):
            parts.append(part)
            left -= len(part)
        return b"".join(parts)
    finally:
        os.close(fd)


def create_once(path: Path, text: str) -> bool:
    """Create a small file whole, unless it exists: a hard link of a temporary file, which
    fails when the name is taken (atomic on NFS too). True if this call created it."""
    if path.exists():  # the usual case of a reader: no temporary file to write
        return False
    tmp = path.with_name(f".{path.name}.{os.uname().nodename}.{os.getpid()}.tmp")
    write_atomic(tmp, text)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    """Write a whole file or nothing: a temporary file in the same folder, then a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # left by a crash, or put there: never written through
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        # surrogateescape: a script or argument that is not UTF-8 is written back byte for byte.
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


# File systems that live on one machine: a chain folder on one of them is not seen by links
# that run on other nodes.
LOCAL_FILE_SYSTEMS = frozenset(
    {"tmpfs", "ramfs", "ext2", "ext3", "ext4", "xfs", "btrfs", "overlay"}
)
NODE_LOCAL_PREFIXES = ("/tmp/", "/var/tmp/", "/dev/shm/")


def file_system_type(path: Path, mounts: str | None = None) -> str:
    """The type of the file system that holds `path`, from /proc/mounts (longest mount point)."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return ""
    target = str(path.resolve()) + "/"
    best, kind = "", ""
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ").rstrip("/") + "/"
        if target.startswith(point) and len(point) > len(best):
            best, kind = point, fields[2]
    return kind


def node_local(path: Path, mounts: str | None = None) -> str | None:
    """Why `path` is likely visible on this node only (a RAM file system, or a local disk under
    /tmp or /var/tmp), or None."""
    kind = file_system_type(path, mounts)
    resolved = str(path.resolve()) + "/"
    if kind in ("tmpfs", "ramfs"):
        return f"a {kind} file system"
    prefix = next((p for p in NODE_LOCAL_PREFIXES if resolved.startswith(p)), None)
    if kind in LOCAL_FILE_SYSTEMS and prefix:
        return f"a local {kind} file system under {prefix.rstrip('/')}"
    return None


def space_problem(path: Path) -> str | None:
    """Why nothing more can be written under `path`: its file system has no space or no
    inodes left (for root too, as the links write as you); None when it has both or cannot say.
    A link cannot record its claim, verdict or events then, so `longrun status` says it."""
    try:
        found = os.statvfs(path)
    except OSError:
        return None
    if found.f_bavail == 0 and found.f_blocks > 0:
        return f"the file system of {path} is full"
    if found.f_favail == 0 and found.f_files > 0:
        return f"the file system of {path} has no free inodes"
    return None
