"""The run lock: one writer per run folder, on every path (grid tasks, `dsa-harness train`, `eval`).

``flock`` on the run folder itself (released by the kernel when the process dies). Where the filesystem
refuses flock (some Lustre/NFS mounts), a lock file ``run.lock`` created with ``O_EXCL`` holding
``{pid, host, since}``, its mtime refreshed every LOCK_HEARTBEAT_S by a thread; such a file is stale
(removed, with a warning) when its process is gone (same host) or its heartbeat is older than LOCK_STALE_S
(another host). Whoever holds the lock also writes ``.lock_holder.json`` (pid, host, since, command) so
that a refused second writer can be told who holds it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

from harness.errors import RunDirError

LOCK_FILE = "run.lock"
HOLDER_FILE = ".lock_holder.json"
LOCK_HEARTBEAT_S = 30.0
LOCK_STALE_S = 300.0
"""A lock file whose heartbeat is older than this (or whose process on this host is gone) is stale."""
_NO_FLOCK = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EINVAL, errno.EBADF)


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _me() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "since": _now_iso(), "command": " ".join(sys.argv)[:300]}


def lock_holder(run_dir: str | os.PathLike) -> dict | None:
    """Who holds the run lock of ``run_dir`` (pid, host, since, command), as its holder wrote it; None if
    nobody says so."""
    for name in (HOLDER_FILE, LOCK_FILE):
        try:
            holder = json.loads((Path(run_dir) / name).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(holder, dict):
            return holder
    return None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs: it exists and is not a zombie (a process that has exited and
    not been reaped yet holds no lock: the kernel released its flock when it died)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: the state after the command name in /proc/<pid>/stat; Z = zombie, X = dead
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


class RunLock:
    """Exclusive lock on a run directory: a duplicate process for the same run waits until the first
    one is finished, preempted or dead.

    ``flock`` on the directory itself (released by the kernel when the process dies). Where the
    filesystem refuses flock, a lock file ``run.lock`` created with ``O_EXCL`` holding
    ``{pid, host, since}``, its mtime refreshed every LOCK_HEARTBEAT_S by a thread; a lock file is
    stale (removed, with a warning) when its process is gone (same host) or its heartbeat is older
    than LOCK_STALE_S (another host)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd: int | None = None
        self.file: Path | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def try_acquire(self) -> bool:
        """Take the lock if free; False while another process holds it."""
        if self.file is None:
            if self.fd is None:
                self.fd = os.open(self.path, os.O_RDONLY)
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._write_holder()
                return True
            except BlockingIOError:
                return False
            except OSError as e:
                if e.errno not in _NO_FLOCK:
                    raise
                os.close(self.fd)
                self.fd = None
                self.file = self.path / LOCK_FILE
                print(
                    f"[dsa-harness] WARNING: {self.path}: the filesystem refuses flock ({e.strerror}); "
                    f"locking with {self.file} instead (stale after {LOCK_STALE_S:.0f} s without heartbeat)",
                    file=sys.stderr,
                    flush=True,
                )
        return self._try_file()

    def _try_file(self) -> bool:
        assert self.file is not None
        try:
            fd = os.open(self.file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if self._stale():
                with contextlib.suppress(FileNotFoundError):
                    self.file.unlink()
                return self._try_file()
            return False
        with os.fdopen(fd, "w") as f:
            json.dump(_me(), f)
        self._stop.clear()
        self._thread = threading.Thread(target=self._heartbeat, name="run-lock-heartbeat", daemon=True)
        self._thread.start()
        self._write_holder()
        return True

    def _write_holder(self) -> None:
        with contextlib.suppress(OSError):  # informative only: the lock itself is the flock / run.lock
            (self.path / HOLDER_FILE).write_text(json.dumps(_me()))

    def acquire(self, wait: bool, poll_s: float = 1.0) -> RunLock:
        """Take the lock; when another process holds it, wait (``wait``) or raise ``RunDirError`` naming the
        holder (pid, host, since). Returns self (a context manager that releases)."""
        while not self.try_acquire():
            if not wait:
                holder = lock_holder(self.path) or {}
                who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} since {holder.get('since', '?')}"
                raise RunDirError(
                    f"{self.path} is being written by another process ({who}); wait for it (--wait) or give "
                    "another --out"
                )
            time.sleep(poll_s)
        return self

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _stale(self) -> bool:
        assert self.file is not None
        try:
            holder = json.loads(self.file.read_text())
            age = time.time() - self.file.stat().st_mtime
        except FileNotFoundError:
            return False  # released meanwhile: try again
        except (OSError, ValueError):
            holder, age = {}, time.time() - self.file.stat().st_mtime  # being written, or garbage
        if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
            stale = not pid_alive(holder["pid"])
        else:
            stale = age > LOCK_STALE_S
        if stale:
            print(
                f"[dsa-harness] WARNING: {self.file}: stale lock of {holder or 'an unreadable holder'} "
                f"(heartbeat {age:.0f} s ago); taking it over",
                file=sys.stderr,
                flush=True,
            )
        return stale

    def _heartbeat(self) -> None:
        while not self._stop.wait(LOCK_HEARTBEAT_S):
            with contextlib.suppress(OSError):
                os.utime(self.file)

    def release(self) -> None:
        if self.fd is not None or self._thread is not None:
            with contextlib.suppress(OSError):
                (self.path / HOLDER_FILE).unlink()
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            with contextlib.suppress(FileNotFoundError):
                self.file.unlink()
        if self.fd is not None:
            os.close(self.fd)  # releases the flock
            self.fd = None
