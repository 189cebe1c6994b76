"""The chain's state on disk: the one module that knows the layout of the state directory.

    <state>/chains/<chain-id>/        mode 0700, one per chain
        chain.json                    metadata, written once at submission
        script                        copy of the user's script
        link.sh                       the rendered link script every link runs
        library.sh                    its helper library, read-only; link.sh checks its checksum
        env                           submission environment, NUL-separated, mode 0600
        events.d/<host>.<pid>.jsonl   the events of one longrun process (submission, watcher,
                                      cancel...): one writer per file
        ended                         the chain's end state: created once, never replaced
        links/<job-id>/               per link, written by that link only: events.jsonl,
                                      verdict, successor, streak, stop_after, sbatch.err, body,
                                      learned, avoid, command (the successor's sbatch command as
                                      the link built it) or request (the same, for a keeper)
        links/<job-id>/claim          symbolic link to the one job that continues this link,
                                      created atomically by that job
        elements/<index>/ended        an array element's end state, created once (the
                                      chain's own `ended` ends every element)
    <state>/jobs/<job-id>             the chain id of that job, for lookups by job id

Every file has one writer (the folder may be on NFS, shared by many hosts); readers merge the
event files by each writer's clock, for people to read. Hosts' clocks differ: the order of the
links and the last link are decided from the events' own facts, never from that merge
(longrun.chain_view.link_order). The job side (bash) writes into the same layout, by the names
it shares with this module in longrun/protocol.py. (Chains made before events.d existed kept
one events.jsonl; it is read too.)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import log, protocol
from .chain_record import ChainRecord
from .errors import ChainNotFoundError, LongrunError, StateError
from .files import (
    FILE_LIMIT,
    create_once,
    read_regular,
    write_atomic,
)
from .protocol import MAX_NUMBER, Event, read_snapshot, snapshot_bytes

STATE_ENV = "LONGRUN_HOME"
CHAIN_ID_PATTERN = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{4}(?:[0-9a-f]{4})?$")  # 4 hex: older chains
JOB_ID_PATTERN = re.compile(r"^\d+$")


def default_root(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """--state-dir, else $LONGRUN_HOME, else ~/.longrun."""
    env = os.environ if environ is None else environ
    if explicit:
        return Path(explicit).expanduser().absolute()
    if env.get(STATE_ENV):
        return Path(env[STATE_ENV]).expanduser().absolute()
    return Path.home() / ".longrun"


def new_chain_id(now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return f"{stamp}-{os.urandom(4).hex()}"


def check_private(path: Path, what: str) -> None:
    """Refuse a folder that is not ours or that others can write into (or, for a chain, read)."""
    try:
        info = path.stat()
    except OSError as exc:
        raise StateError(f"cannot read {what} {path}: {exc.strerror}") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise StateError(
            f"{what} {path} is not a directory",
            "Point --state-dir (or $LONGRUN_HOME) at a directory.",
        )
    if info.st_uid != os.getuid():
        raise StateError(
            f"{what} {path} belongs to another user (uid {info.st_uid})",
            "longrun only uses state folders you own; choose your own with --state-dir.",
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise StateError(
            f"{what} {path} is writable by other users (mode {stat.S_IMODE(info.st_mode):04o})",
            f"Someone else could change what your jobs run: `chmod go-w {path}`.",
        )


def check_trusted_path(path: Path) -> None:
    """Refuse a path that someone else could swap for one of their own: every folder on the way
    must belong to you or root and be writable by nobody else unless sticky (like /tmp), and
    every symbolic link met on the way must belong to you or root. The job side checks the
    same (lr_trusted_path)."""
    uid = os.getuid()
    current = Path("/")
    pending = list(Path(path).absolute().parts[1:])  # `..` after a link: as the kernel does
    hops = 0
    _check_trusted_folder(current, os.lstat(current), uid)
    while pending:
        name = pending.pop(0)
        if name in ("", "."):
            continue
        if name == "..":
            current = current.parent
            continue
        candidate = current / name
        try:
            info = os.lstat(candidate)
        except FileNotFoundError:
            return  # not there yet: it will be created by its checked parent's owner
        except OSError as exc:
            raise StateError(f"cannot read {candidate}: {exc.strerror}") from exc
        if stat.S_ISLNK(info.st_mode):
            if info.st_uid not in (0, uid):
                raise StateError(
                    f"{candidate} is a symbolic link of another user (uid {info.st_uid})",
                    "Someone else could point it elsewhere: use a path without it.",
                )
            hops += 1
            if hops > 40:
                raise StateError(f"{path}: too many symbolic links")
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = Path("/")
            pending = list(Path(target).parts[1 if target.startswith("/") else 0 :]) + pending
            continue
        _check_trusted_folder(candidate, info, uid)
        current = candidate


def _check_trusted_folder(path: Path, info: os.stat_result, uid: int) -> None:
    if info.st_uid not in (0, uid):
        raise StateError(
            f"{path} belongs to another user (uid {info.st_uid}), and your chains are inside it",
            "That user could swap your chain folders for their own: choose a state directory "
            "on a path of folders owned by you or root with --state-dir.",
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
        raise StateError(
            f"{path} is writable by other users (mode {stat.S_IMODE(info.st_mode):04o}), and "
            "your chains are inside it",
            f"Others could swap your chain folders for their own: `chmod go-w {path}`, or "
            "choose another state directory with --state-dir.",
        )


@dataclass(frozen=True)
class StateDir:
    """The root that holds every chain of one user."""

    root: Path

    @property
    def chains(self) -> Path:
        return self.root / protocol.CHAINS

    @property
    def jobs(self) -> Path:
        return self.root / protocol.JOBS

    def ensure(self) -> list[Path]:
        """Create the state directory (mode 0700) or check the existing one is safe to use.
        Returns the folders this call made, so that a failed submission can take back its own,
        never one that a submission running at the same time made."""
        check_trusted_path(self.root)
        made: list[Path] = []
        if not (self.root.exists() or self.root.is_symlink()):
            umask = os.umask(0o077)  # missing parents too: 0700, never open to the group
            try:
                self.root.mkdir(mode=0o700, parents=True)
                made.append(self.root)
            except FileExistsError:
                pass  # another submission made it meanwhile: checked below like any other
            except OSError as exc:
                raise StateError(
                    f"cannot create state directory {self.root}: {exc.strerror}",
                    "Choose a writable place visible from compute nodes with --state-dir.",
                ) from exc
            finally:
                os.umask(umask)
        if not made:
            check_private(self.root, "state directory")
        for sub in (self.chains, self.jobs):
            try:
                sub.mkdir(mode=0o700)
                made.append(sub)
            except FileExistsError:
                pass
            except OSError as exc:
                raise StateError(f"cannot create {sub}: {exc.strerror}") from exc
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StateError(
                f"state directory {self.root} is not writable",
                "Choose a writable place visible from compute nodes with --state-dir.",
            )
        return made

    def exists(self) -> bool:
        return self.chains.is_dir()

    @contextlib.contextmanager
    def creating(self, chain_id: str) -> Iterator[ChainFolder]:
        """A new chain folder; removed again if the block fails, so nothing half-written stays."""
        folder = ChainFolder(self.chains / chain_id)
        try:
            folder.path.mkdir(mode=0o700)
        except FileExistsError as exc:
            raise StateError(f"chain folder {folder.path} already exists") from exc
        (folder.path / protocol.LINKS).mkdir(mode=0o700)
        try:
            yield folder
        except BaseException:
            import shutil  # only on this rare path: read-only commands do not load it

            shutil.rmtree(folder.path, ignore_errors=True)
            raise

    def record_job(self, job_id: str, chain_id: str) -> None:
        """Index a job id to its chain so any link's job id names the chain."""
        write_atomic(self.jobs / job_id, chain_id + "\n")

    def find(self, ref: str | None) -> ChainFolder:
        """The chain named by a chain id or any of its links' job ids; None means the newest."""
        if not self.exists():
            raise ChainNotFoundError(
                f"no state directory at {self.root}: no chain was submitted with it",
                "Submit with sbatch_longrun first, or point --state-dir / $LONGRUN_HOME at the "
                "state directory you used.",
            )
        if ref is None:
            chains = self.list()
            if not chains:
                raise ChainNotFoundError(f"no chains in {self.root}")
            return chains[0]
        ref = ref.strip()
        if CHAIN_ID_PATTERN.match(ref):
            folder = ChainFolder(self.chains / ref)
            if folder.path.is_dir():
                folder.check_safe()
                return folder
        elif JOB_ID_PATTERN.match(ref.split("_")[0].split(".")[0]):
            job_id = ref.split("_")[0].split(".")[0]
            with contextlib.suppress(OSError):
                index = read_regular(str(self.jobs / job_id), limit=100)
                chain_id = index.decode("ascii", "replace").strip()
                folder = ChainFolder(self.chains / chain_id)
                if CHAIN_ID_PATTERN.match(chain_id) and folder.path.is_dir():
                    folder.check_safe()
                    return folder
        raise ChainNotFoundError(
            f"no chain {ref!r} in {self.root}",
            "Name a chain by its chain id or by the job id of any of its links "
            "(`longrun list` shows them).",
        )

    def list(self) -> list[ChainFolder]:
        """Every chain folder, newest first (chain ids start with their creation time)."""
        if not self.chains.is_dir():
            return []
        names = [p.name for p in self.chains.iterdir() if CHAIN_ID_PATTERN.match(p.name)]
        return [ChainFolder(self.chains / name) for name in sorted(names, reverse=True)]


@dataclass(frozen=True)
class ChainFolder:
    """One chain's folder and the files in it."""

    path: Path

    @property
    def chain_id(self) -> str:
        return self.path.name

    @property
    def meta_file(self) -> Path:
        return self.path / protocol.META

    @property
    def script_file(self) -> Path:
        return self.path / protocol.SCRIPT

    @property
    def link_script(self) -> Path:
        return self.path / protocol.LINK_SCRIPT

    @property
    def library_file(self) -> Path:
        return self.path / protocol.LIBRARY

    @property
    def env_file(self) -> Path:
        return self.path / protocol.ENV

    @property
    def events_file(self) -> Path:
        """The single event log of chains made before every writer had its own file."""
        return self.path / protocol.EVENTS

    @property
    def own_events_file(self) -> Path:
        """This process's event file: no other process writes it."""
        return self.path / protocol.EVENTS_DIR / f"{os.uname().nodename}.{os.getpid()}.jsonl"

    def event_files(self) -> list[str]:
        """Every event file of the chain: the old single log, each process's, each link's.
        Plain strings and one listing per folder, no stat: `longrun list` reads hundreds of
        chains, `longrun status` a thousand links."""
        top = str(self.path)
        with contextlib.suppress(FileNotFoundError):
            names = set(os.listdir(top))
            files = [f"{top}/{protocol.EVENTS}"] if protocol.EVENTS in names else []
            if protocol.EVENTS_DIR in names:
                writers = f"{top}/{protocol.EVENTS_DIR}"
                own = [n for n in os.listdir(writers) if n.endswith(".jsonl") and n[0] != "."]
                files += [f"{writers}/{name}" for name in sorted(own)]
            if protocol.LINKS in names:  # a link without events yet is skipped when read
                links = f"{top}/{protocol.LINKS}"
                jobs = sorted(  # a link's folder, never a symbolic link to elsewhere
                    (entry.name for entry in os.scandir(links)
                     if digits(entry.name) is not None and not entry.is_symlink()),
                    key=int,  # (job ids as numbers, not as text: 99999 before 100000)
                )  # fmt: skip
                files += [f"{links}/{job}/{protocol.EVENTS}" for job in jobs]
            return files
        return []

    @property
    def ended_file(self) -> Path:
        return self.path / protocol.ENDED

    def link_dir(self, job_id: str) -> Path:
        return self.path / protocol.LINKS / job_id

    def check_safe(self) -> None:
        """Before a chain's files are trusted (read to submit, cancel or repair): the whole
        path to it, then the folder itself."""
        check_trusted_path(self.path)
        check_private(self.path, "chain folder")
        mode = stat.S_IMODE(self.path.stat().st_mode)
        if mode & 0o077:
            raise StateError(
                f"chain folder {self.path} has loose permissions ({mode:04o}); it holds your "
                "environment and the script your jobs run",
                f"Restore them with `chmod 700 {self.path}` if you trust its content.",
            )

    @contextlib.contextmanager
    def held(self) -> Iterator[int]:
        """The chain folder, checked (check_safe) and then held open: what is read through the
        handle (read_regular's dir_fd) comes from the folder that was checked, even if another
        one is put at its path afterwards."""
        self.check_safe()
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags)
        except OSError as exc:
            raise StateError(f"cannot open chain folder {self.path}: {exc.strerror}") from exc
        try:
            info = os.fstat(fd)
            if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
                raise StateError(f"chain folder {self.path} changed while it was checked")
            yield fd
        finally:
            os.close(fd)

    # --- writing (submission) ---------------------------------------------------------------
    def write_meta(self, record: ChainRecord) -> None:
        write_atomic(self.meta_file, record.to_json())

    def write_script(self, text: str) -> None:
        write_atomic(self.script_file, text, mode=0o600)

    def write_link_script(self, text: str) -> None:
        write_atomic(self.link_script, text, mode=0o700)

    def write_library(self, text: str) -> None:
        """Read-only: a link refuses a library whose checksum differs from its own record."""
        write_atomic(self.library_file, text, mode=0o400)

    def write_env(self, environ: Mapping[str, str]) -> None:
        """Snapshot the submission environment (see longrun.environment), mode 0600."""
        write_atomic(self.env_file, snapshot_bytes(environ).decode(errors="surrogateescape"))

    def read_env(self, handle: int | None = None) -> dict[str, str]:
        """The environment snapshot (through a handle on the folder from held(), if given)."""
        path = protocol.ENV if handle is not None else str(self.env_file)
        try:
            return read_snapshot(read_regular(path, dir_fd=handle))
        except OSError as exc:
            raise StateError(f"cannot read {self.env_file}: {exc.strerror}") from exc

    def append_event(self, event: str, **fields: Any) -> None:
        """One record, one write, in this process's own event file."""
        now = time.time()
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "epoch": int(now), "t": now}
        record["event"] = event
        record.update({k: v for k, v in fields.items() if v is not None})
        line = json.dumps(record, separators=(",", ":")) + "\n"
        path = self.own_events_file
        path.parent.mkdir(mode=0o700, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as exc:  # a symbolic link put in its place is never written through
            raise StateError(f"cannot write {path}: {exc.strerror}") from exc
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    @property
    def watch_log(self) -> Path:
        return self.path / protocol.WATCH_LOG

    def set_watcher_pid(self, pid: int) -> None:
        write_atomic(self.path / protocol.WATCH_PID, f"{pid}\n")

    def set_ended(self, state: str, element: int | None = None) -> bool:
        """Record the chain's (or an array element's) end unless one is recorded already; True
        if this call did."""
        path = self.ended_file if element is None else self.element_ended_file(element)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return create_once(path, state + "\n")

    def element_ended_file(self, element: int) -> Path:
        return self.path / protocol.ELEMENTS / str(element) / protocol.ENDED

    def element_ends(self) -> dict[int, str]:
        """The recorded end of every array element that has one."""
        ends = {}
        for path in (self.path / protocol.ELEMENTS).glob(f"*/{protocol.ENDED}"):
            index = digits(path.parent.name)
            if index is not None and not path.parent.is_symlink():
                ends[index] = _small_text(path) or ""
        return {element: state for element, state in ends.items() if state}

    # --- reading ----------------------------------------------------------------------------
    def read_meta(self, handle: int | None = None) -> ChainRecord:
        """chain.json (through a handle on the folder from held(), if given)."""
        try:
            path = protocol.META if handle is not None else str(self.meta_file)
            return ChainRecord.from_json(read_regular(path, dir_fd=handle))
        except (OSError, ValueError, RecursionError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise StateError(f"cannot read {self.meta_file}: {why}") from exc

    def read_events(self) -> list[Event]:
        """Every event of every writer, oldest first; a damaged line is skipped."""
        return EventTail(self).read()

    def ended(self) -> str | None:
        return _small_text(self.ended_file)

    def verdict(self, job_id: str) -> str | None:
        return _small_text(self.link_dir(job_id) / protocol.VERDICT)

    def successor(self, job_id: str) -> str | None:
        """The successor a link recorded for itself."""
        return _small_text(self.link_dir(job_id) / protocol.SUCCESSOR)


def _small_text(path: Path) -> str | None:
    """A one-line file's text; None if it is missing or empty."""
    try:
        return read_regular(str(path)).decode(errors="replace").strip() or None
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def reading(folder: ChainFolder) -> Iterator[None]:
    """Any unexpected error while a chain is read (a damaged or hostile file in its folder) as
    a StateError that names the chain, so that a command says so instead of a traceback;
    longrun's own errors pass unchanged."""
    try:
        yield
    except LongrunError:
        raise
    except Exception as exc:
        if isinstance(exc, OSError) and exc.filename:
            what = f"{exc.filename}: {exc.strerror}"
        else:
            what = f"{type(exc).__name__}: {exc}"
        what = "".join(c if c.isprintable() else "?" for c in what[:300])
        raise StateError(
            f"chain {folder.chain_id} is damaged: {what}",
            f"A file in {folder.path} is not as longrun writes it; look at the folder, or move "
            "it out of the state directory.",
        ) from exc


def event_time(event: Mapping[str, Any]) -> float:
    """When an event happened: sub-second `t` where the writer gave it, else `epoch`."""
    for key in ("t", "epoch"):
        value = event.get(key)
        try:
            when = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if -MAX_NUMBER <= when <= MAX_NUMBER:  # not inf or nan, which a hostile file may give
            return when
    return 0.0


def digits(text: str) -> int | None:
    """The number that a field or file name of ASCII digits gives (str.isdigit takes "²" too,
    which int refuses), or None; None too beyond MAX_NUMBER."""
    if text.isascii() and text.isdigit() and len(text) <= len(str(MAX_NUMBER)):
        number = int(text)
        return number if number <= MAX_NUMBER else None
    return None


class EventTail:
    """The events of every writer of a chain, merged by time; each read returns the new ones.

    Each file keeps its own order: one writer at a time appends to it, so its order is true
    even where its stamps are not (a job that Slurm requeued onto a host whose clock is behind
    goes on writing its link's file). An event sorts at the latest stamp its file has shown."""

    def __init__(self, folder: ChainFolder, from_end: bool = False) -> None:
        self.folder = folder
        self.offsets: dict[str, int] = {}
        for path in folder.event_files() if from_end else []:
            with contextlib.suppress(FileNotFoundError):  # a link that has written nothing yet
                self.offsets[path] = os.stat(path).st_size

    def read(self) -> list[Event]:
        chunks: list[tuple[str, list[str]]] = []
        for path in self.folder.event_files():
            offset = self.offsets.get(path, 0)
            data = _read_from(path, offset)
            end = data.rfind(b"\n")  # a line still being written is read next time
            if end < 0:
                continue
            self.offsets[path] = offset + end + 1
            text = data[: end + 1].decode("utf-8", errors="replace")
            chunks.append((path, [line for line in text.splitlines() if line.strip()]))
        found: list[tuple[float, int, int, Event]] = []
        for number, records in enumerate(_parse_chunks(chunks)):
            latest = -float(MAX_NUMBER)
            for index, record in enumerate(records):
                event = _plain(record)
                if event is None:
                    continue
                upgraded = Event(protocol.upgrade_event(event))
                latest = max(latest, event_time(event))  # never before its file's earlier lines
                found.append((latest, number, index, upgraded))
        found.sort(key=lambda item: item[:3])
        return [event for *_, event in found]


# (MAX_NUMBER, protocol.py: a field beyond it is dropped when read.)


_WARNED: set[str] = set()  # files a warning was given for: once per process (a watcher polls)


def _read_from(path: str, offset: int) -> bytes:
    """The event file's bytes from the offset on; nothing if it does not exist (yet), or if it
    is not a regular file (a warning, once)."""
    try:
        data = read_regular(path, offset)
    except FileNotFoundError:
        return b""
    except OSError as exc:
        _warn_once(path, f"{path}: {exc.strerror}")
        return b""
    if offset + len(data) >= FILE_LIMIT:
        _warn_once(path, f"{path}: only its first {FILE_LIMIT >> 20} MiB are read")
    return data


def _warn_once(path: str, message: str) -> None:
    if path not in _WARNED:
        _WARNED.add(path)
        log.warning("{}", message)


def _plain(record: Any) -> dict[str, Any] | None:
    """An event as later readers may take it: an object whose fields are plain values (text,
    true/false, null, a number of sane size); any other field (nested, inf, nan, 400 digits) is
    dropped. None for a record that is not an object."""
    if not isinstance(record, dict):
        return None
    for value in record.values():  # inline, not _sane: thousands of events per read
        kind = type(value)
        if kind is str or value is None or kind is bool:
            continue
        if (kind is int or kind is float) and -MAX_NUMBER <= value <= MAX_NUMBER:
            continue
        return {key: value for key, value in record.items() if _sane(value)}
    return record


def _sane(value: Any) -> bool:
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    return (kind is int or kind is float) and -MAX_NUMBER <= value <= MAX_NUMBER


def _parse_chunks(chunks: list[tuple[str, list[str]]]) -> list[list[dict[str, Any]]]:
    """The JSON records of each file's whole lines: all files parsed at once, file by file and
    line by line only if a line is damaged (or nested too deep for the parser)."""
    try:
        records = json.loads("[" + ",".join(line for _, lines in chunks for line in lines) + "]")
    except (ValueError, RecursionError):
        records = None
    if records is None or len(records) != sum(len(lines) for _, lines in chunks):
        return [_parse_lines(lines, path) for path, lines in chunks]
    parsed, start = [], 0
    for _, lines in chunks:
        parsed.append(records[start : start + len(lines)])
        start += len(lines)
    return parsed


def _parse_lines(lines: list[str], path: str) -> list[dict[str, Any]]:
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:
            log.warning("{}: a damaged event line was skipped", path)
    return records
