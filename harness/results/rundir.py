"""The run-directory contract: the one place that knows the file names inside a run.

A run directory ``results/runs/<grid>/<run_id>/`` holds:

    config.json     the fully resolved configuration (written once, before work starts)
    metrics.jsonl   one JSON object per line, appended per epoch (training runs)
    final.json      written last, atomically; its presence (and parsing) means *done*
    predictions.parquet  one row per listed test video of the run's test (written before final.json;
                    read and written through ``harness.results.predictions``); ``dsa-harness eval`` writes
                    ``eval-<...>.json`` and ``eval-<...>.predictions.parquet`` beside them
    checkpoint.pt   latest training checkpoint, replaced atomically
    log.txt         human-readable log of the run
    job.json        launcher marker: scheduler job id, attempts, submission time
    error.json      last failure (exception type, message, traceback tail)
    predictions.parquet  per-video test predictions (train task; read by ``harness.results.cache.load_correct``)

One run id is one run wherever it is asked: two grids that expand to the same run, or a grid and
``dsa-harness train`` (``results/runs/manual/<run_id>/``), share the first folder that holds it
(:func:`run_folders_by_id` finds them; ``harness.results.status.state_elsewhere`` says which one counts): it is
trained once, and the store counts it once.

Beside the run directories of a grid, ``results/runs/<grid>/_grid.json`` (the grid manifest, written by
``sweep submit``) lists the run ids the grid file expands to now; a run folder of the grid that it does
not list comes from an earlier version of the grid file and is left out of tables. ``<root>/.cache/``
(:data:`CACHE_DIR`) holds the results store's caches (``harness.results.cache``); it is never a run.

The engine and the launcher write through this module; the store and reports read
through it. Every write of a JSON file is atomic (temp file in the same folder, fsync,
rename), so a reader never sees half a file and a killed writer loses nothing that was
already complete.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import RunDirError

CONFIG = "config.json"
METRICS = "metrics.jsonl"
FINAL = "final.json"
PREDICTIONS = "predictions.parquet"
CHECKPOINT = "checkpoint.pt"
LOG = "log.txt"
JOB = "job.json"
ERROR = "error.json"
GRID_MANIFEST = "_grid.json"
CACHE_DIR = ".cache"
SIGNED_FILES = (CONFIG, FINAL, METRICS, JOB, ERROR, PREDICTIONS, CHECKPOINT)
"""Files whose size and mtime_ns make a run's signature (what the store and ``run_state`` read; the checkpoint's
ends are checked for a cut, ``RunDir.cut_files``)."""
RESULT_FILES = (PREDICTIONS, METRICS)
"""Files a finished run's results stand on besides config.json and final.json: one cut makes it ``damaged``."""
PRESENT_FILES = (LOG,)
"""Files whose presence only is part of the signature (the log ``sweep status`` shows)."""


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _sanitize(obj: Any) -> Any:
    """Replace NaN/inf floats by None so the files stay strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _sanitize(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_sanitize(v) for v in obj]
    return obj


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _naming(e: OSError, path: Path) -> OSError:
    """``e`` naming ``path`` when it names no file (a failed write or fsync); the file it was written to
    (nothing was: the old file, if any, is intact)."""
    if e.filename is not None:
        return e
    named = type(e)(e.errno, e.strerror or str(e), str(path))
    named.__traceback__ = e.__traceback__
    return named


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, rename. The file gets
    the mode a plain ``open(path, "w")`` would give (0666 less the umask), not mkstemp's private 0600, so
    teammates sharing a results folder can read it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise _naming(e, path) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError):  # a full disk, a quota: the file it was writing, not a nameless errno
            raise _naming(e, path) from None
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    text = json.dumps(_sanitize(obj), indent=2, sort_keys=True, default=_json_default)
    atomic_write_bytes(path, (text + "\n").encode())


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@dataclass(frozen=True)
class RunDir:
    """Paths and readers/writers of one run directory."""

    path: Path

    def __init__(self, path: str | os.PathLike):
        object.__setattr__(self, "path", Path(path))

    # paths -------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def final_path(self) -> Path:
        return self.path / FINAL

    @property
    def predictions_path(self) -> Path:
        """The training run's test predictions (``harness.results.predictions``)."""
        return self.path / PREDICTIONS

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def log_path(self) -> Path:
        return self.path / LOG

    @property
    def job_path(self) -> Path:
        return self.path / JOB

    @property
    def error_path(self) -> Path:
        return self.path / ERROR

    @property
    def run_id(self) -> str:
        return self.path.name

    # writers -----------------------------------------------------------------------
    def create(self) -> RunDir:
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def write_config(self, config: dict) -> None:
        atomic_write_json(self.config_path, config)

    def write_final(self, final: dict) -> None:
        atomic_write_json(self.final_path, final)

    def write_job(self, job: dict) -> None:
        atomic_write_json(self.job_path, job)

    def write_error(self, error: dict) -> None:
        atomic_write_json(self.error_path, error)

    def append_metrics(self, record: dict) -> None:
        """Append one JSON line. A line is written with a single ``write`` call and fsynced."""
        self.path.mkdir(parents=True, exist_ok=True)
        line = json.dumps(_sanitize(record), sort_keys=True, default=_json_default) + "\n"
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def truncate_metrics(self, keep_epochs_below: int) -> None:
        """Drop metric lines with ``epoch >= keep_epochs_below`` (used on resume, so that
        epochs redone after a kill are not recorded twice)."""
        if not self.metrics_path.exists():
            return
        records, problems = self.scan_metrics()
        unaccounted = [p for p in problems if not p.endswith("torn last line")]  # a killed writer's last line
        if unaccounted:
            raise RunDirError(
                f"{self.path}: {unaccounted[0]}{f' (+{len(unaccounted) - 1} more)' if len(unaccounted) > 1 else ''}: "
                "resuming would drop lines it cannot read; move metrics.jsonl aside (its epochs are then "
                "recorded anew) or restore it"
            )
        kept = [r for r in records if r.get("epoch", -1) < keep_epochs_below]
        text = "".join(json.dumps(r, sort_keys=True, default=_json_default) + "\n" for r in kept)
        atomic_write_bytes(self.metrics_path, text.encode())

    def log(self, message: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(message.rstrip("\n") + "\n")

    # readers -----------------------------------------------------------------------
    def read_config(self) -> dict:
        return read_json(self.config_path)

    def read_final(self) -> dict | None:
        """The final record, or None if absent, unparsable or not a JSON object (a run is done only if
        this is a record)."""
        try:
            final = read_json(self.final_path)
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return final if isinstance(final, dict) else None

    def read_job(self) -> dict | None:
        try:
            return read_json(self.job_path)
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None

    def read_error(self) -> dict | None:
        try:
            return read_json(self.error_path)
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None

    def scan_metrics(self) -> tuple[list[dict], list[str]]:
        """(records, problems) of metrics.jsonl: the lines that are JSON objects, and one message per other
        line naming it (``metrics.jsonl:7: not UTF-8``, ``...: not a JSON object``, ``...: torn last line``).
        Reading never raises on content. Fast path: the whole file parsed as one JSON array when every line
        is complete (one parser call instead of one per epoch: reports read thousands of runs)."""
        try:
            data = self.metrics_path.read_bytes()
        except FileNotFoundError:
            return [], []
        try:
            lines = [line for line in data.decode("utf-8").splitlines() if line.strip()]
            records = json.loads("[" + ",".join(lines) + "]")
            if len(records) == len(lines) and all(isinstance(r, dict) for r in records):
                return records, []
        except (UnicodeDecodeError, json.JSONDecodeError):
            pass
        records, problems = [], []
        raw_lines = data.split(b"\n")
        for number, raw in enumerate(raw_lines, 1):
            if not raw.strip():
                continue
            where = f"{METRICS}:{number}"
            try:
                rec = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                problems.append(f"{where}: not UTF-8")
                continue
            except json.JSONDecodeError:
                last = number == len(raw_lines)  # no newline after it: the writer was killed mid-line
                problems.append(f"{where}: torn last line" if last else f"{where}: not JSON")
                continue
            if isinstance(rec, dict):
                records.append(rec)
            else:
                problems.append(f"{where}: not a JSON object")
        return records, problems

    def read_metrics(self) -> list[dict]:
        """The metric records (lines that are not JSON objects are left out: see :meth:`scan_metrics`)."""
        return self.scan_metrics()[0]

    def metrics_torn(self) -> bool:
        """True when metrics.jsonl does not end with a newline (a writer killed mid-line)."""
        try:
            with open(self.metrics_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                if f.tell() == 0:
                    return False
                f.seek(-1, os.SEEK_END)
                return f.read(1) != b"\n"
        except OSError:
            return False

    def config_problem(self) -> str | None:
        """Why config.json cannot be read as a run's record (missing, cut, not UTF-8, not a JSON object),
        or None when it can."""
        return self.checked_config()[1]

    def checked_config(self) -> tuple[dict | None, str | None]:
        """(config.json as a record or None, why it cannot be read: :meth:`config_problem`)."""
        try:
            config = self.read_config()
        except FileNotFoundError:
            return None, f"{CONFIG} missing"
        except (OSError, ValueError) as e:  # JSONDecodeError, UnicodeDecodeError are ValueErrors
            text = str(e).splitlines()[0][:120] if str(e) else ""
            return None, f"{CONFIG} unreadable (cut or half-written?): {type(e).__name__}: {text}"
        if not isinstance(config, dict):
            return None, f"{CONFIG} is not a JSON object (a {type(config).__name__})"
        return config, None

    def foreign_problem(self, config: dict | None) -> str | None:
        """Why the folder holds another run's files: its name is a run id (12 hex digits, as the launcher and
        ``train`` name run folders) and its config.json records another one (a folder copied or renamed)."""
        stored = config.get("run_id") if isinstance(config, dict) else None
        name = self.run_id
        if not isinstance(stored, str) or stored == name or not is_run_id(name):
            return None
        return f"{CONFIG} is run {stored}'s, not this folder's ({name}): a copied or renamed run folder"

    def cut_files(self, final: dict | None = None) -> list[tuple[str, str]]:
        """(file name, message) per run file that is present but visibly cut (checked cheaply, from its ends, never
        parsed whole): ``predictions.parquet`` (a Parquet file starts and ends with ``PAR1``),
        ``checkpoint.pt`` (a zip: its last 22 bytes are the end record), ``metrics.jsonl`` not ending in a
        newline (a line cut), or empty or with fewer lines than the epochs ``final`` (a finished training run's
        record) states."""
        found = []
        head_tail = {PREDICTIONS: (b"PAR1", b"PAR1", 12), CHECKPOINT: (b"PK", b"PK\x05\x06", 22)}
        for name, (head, tail, least) in head_tail.items():
            path = self.path / name
            try:
                with open(path, "rb") as f:
                    f.seek(0, os.SEEK_END)
                    size = f.tell()
                    ok = size >= least
                    if ok:
                        f.seek(0)
                        ok = f.read(len(head)) == head
                    if ok:
                        f.seek(size - (22 if name == CHECKPOINT else len(tail)))
                        ok = f.read(len(tail)) == tail
            except FileNotFoundError:
                continue
            except OSError as e:
                found.append((name, f"{name} unreadable: {e.strerror or e}"))
                continue
            if not ok:
                kind = "Parquet" if name == PREDICTIONS else "checkpoint"
                found.append((name, f"{name} cut or not a {kind} file ({size} bytes)"))
        st = self._stat(METRICS)
        trained = final is not None and final.get("task") == "train" and final.get("status", "done") == "done"
        epochs = (final.get("train") or {}).get("epochs") if trained and isinstance(final.get("train"), dict) else None
        if st is not None:
            if self.metrics_torn():
                found.append((METRICS, f"{METRICS} cut (its last line has no end)"))
            elif st[1] == 0 and trained:
                found.append((METRICS, f"{METRICS} empty for a finished training run"))
            elif isinstance(epochs, int) and not isinstance(epochs, bool) and st[1] < 1 << 24:
                try:
                    lines = sum(1 for line in self.metrics_path.read_bytes().split(b"\n") if line.strip())
                except OSError:
                    lines = epochs
                if lines < epochs:
                    found.append((METRICS, f"{METRICS} cut: {lines} epoch line(s), {FINAL} records {epochs} epochs"))
        return found

    def in_use(self) -> str | None:
        """Who holds the run lock now (``harness.results.lock``), where that can be told from the files: a
        holder on this host whose process is alive, or a lock file whose heartbeat is fresh; else None."""
        import socket
        import time

        from harness.results.lock import LOCK_FILE, LOCK_STALE_S, lock_holder, pid_alive

        holder = lock_holder(self.path)
        if not holder:
            return None
        pid, host = holder.get("pid"), holder.get("host")
        if host == socket.gethostname():
            alive = isinstance(pid, int) and pid != os.getpid() and pid_alive(pid)
        else:
            try:
                alive = time.time() - os.stat(self.path / LOCK_FILE).st_mtime < LOCK_STALE_S
            except OSError:
                alive = False
        if not alive:
            return None
        command = str(holder.get("command") or "")[:80]
        return f"in use by pid {pid} on {host} since {holder.get('since')}" + (f" ({command})" if command else "")

    def is_done(self) -> bool:
        return self.read_final() is not None

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.exists()

    def has_metrics(self) -> bool:
        """metrics.jsonl holds something (an epoch was recorded, or is being)."""
        st = self._stat(METRICS)
        return st is not None and st[1] > 0

    # change detection ---------------------------------------------------------------
    def _stat(self, name: str) -> tuple[int, int] | None:
        try:
            st = os.stat(os.path.join(self.path, name))
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    def metrics_signature(self) -> tuple[int, int] | None:
        """(mtime_ns, size) of metrics.jsonl, None when absent: tells whether records read earlier are current."""
        return self._stat(METRICS)

    def predictions_signature(self) -> tuple[int, int] | None:
        """(mtime_ns, size) of predictions.parquet, None when absent."""
        return self._stat(PREDICTIONS)


def about_metrics(problem: str) -> bool:
    """Whether a problem message of :meth:`RunDir.cut_files` / :meth:`RunDir.scan_metrics` is about metrics.jsonl."""
    return problem.startswith(METRICS)


def metrics_signature(path: str | os.PathLike) -> tuple[int, int] | None:
    """``RunDir(path).metrics_signature()`` without building the RunDir (the store asks it of thousands)."""
    return _signature(path, METRICS)


def predictions_signature(path: str | os.PathLike) -> tuple[int, int] | None:
    """``RunDir(path).predictions_signature()`` without building the RunDir (a report asks it of thousands)."""
    return _signature(path, PREDICTIONS)


def _signature(path: str | os.PathLike, name: str) -> tuple[int, int] | None:
    try:
        st = os.stat(os.path.join(path, name))
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


@dataclass(frozen=True)
class RunScan:
    """A run directory found by :func:`scan_run_dirs` and the signature of what it holds now."""

    rd: RunDir
    signature: str  # size and mtime_ns of SIGNED_FILES, presence of PRESENT_FILES
    newest_ns: int  # the newest mtime_ns among them (a file changed within the clock's tick may look unchanged)
    metrics: tuple[int, int] | None  # RunDir.metrics_signature()


def _scan(dirpath: str, filenames: list[str]) -> RunScan:
    names = set(filenames)
    parts, newest, metrics = [], 0, None
    prefix = dirpath + os.sep  # the paths by concatenation: os.path.join is a measurable share of a 20,000-run scan
    for name in SIGNED_FILES:
        if name in names:
            try:
                st = os.stat(prefix + name)
            except FileNotFoundError:
                parts.append("-")
                continue
            parts.append(f"{st.st_size}:{st.st_mtime_ns}")
            newest = max(newest, st.st_mtime_ns)
            if name == METRICS:
                metrics = (st.st_mtime_ns, st.st_size)
        else:
            parts.append("-")
    parts += ["1" if name in names else "0" for name in PRESENT_FILES]
    return RunScan(RunDir(dirpath), "|".join(parts), newest, metrics)


def _walk_run_dirs(root: str | os.PathLike) -> Iterator[tuple[str, list[str]]]:
    """(folder, its file names) of every folder under ``root`` (any depth) that holds a config.json, in
    ``os.walk`` order; a run folder's subfolders, the store's caches (``.cache/``) and symlinked folders are not
    entered. One ``os.scandir`` per folder and no other system call (``os.walk`` adds an lstat per subfolder)."""
    stack = [os.fspath(root)]
    while stack:
        top = stack.pop()
        try:
            with os.scandir(top) as it:
                entries = list(it)
        except OSError:
            continue
        filenames, subdirs = [], []
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if not is_dir:
                filenames.append(entry.name)
            elif entry.name != CACHE_DIR and not entry.is_symlink():
                subdirs.append(entry.path)
        if CONFIG in filenames:
            yield top, filenames
        else:
            stack.extend(reversed(subdirs))


def scan_run_dirs(root: str | os.PathLike) -> Iterator[RunScan]:
    """:func:`iter_run_dirs` with each run's signature (one stat per run file present)."""
    for dirpath, filenames in _walk_run_dirs(root):
        yield _scan(dirpath, filenames)


def scan_run_dir(path: str | os.PathLike) -> RunScan:
    """The :class:`RunScan` of one run directory."""
    try:
        filenames = os.listdir(path)
    except OSError:
        filenames = []
    return _scan(str(path), filenames)


def iter_run_dirs(root: str | os.PathLike) -> Iterator[RunDir]:
    """Every folder under ``root`` (any depth) that holds a config.json."""
    for dirpath, _ in _walk_run_dirs(root):
        yield RunDir(dirpath)


def is_run_id(name: str) -> bool:
    """``name`` has the form of a run id (12 lowercase hex digits), as the launcher and ``train`` name run folders."""
    return len(name) == 12 and all(c in "0123456789abcdef" for c in name)


def run_folders_by_id(runs_root: str | os.PathLike) -> dict[str, list[Path]]:
    """Every folder ``<runs_root>/<group>/<run id>/`` by run id, each run id's folders in path order: where this
    results root keeps runs (``<group>``: a grid's name, ``manual`` for ``dsa-harness train``). One listing per
    group folder (no run folder is opened); group names starting with ``_`` or ``.`` (``.cache``) hold no runs."""
    root = Path(runs_root)
    found: dict[str, list[Path]] = {}
    try:
        groups = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return found
    for group in groups:
        if group.name.startswith(("_", ".")) or not group.is_dir():
            continue
        try:
            names = sorted(e.name for e in os.scandir(group.path) if is_run_id(e.name) and e.is_dir())
        except OSError:
            continue
        for name in names:
            found.setdefault(name, []).append(root / group.name / name)
    return found


def write_grid_manifest(
    grid_dir: str | os.PathLike, *, grid: str, grid_file: str, run_ids: list[str], written_at: str
) -> Path:
    """Record, atomically, that grid ``grid`` (from ``grid_file``) now consists of exactly ``run_ids``:
    ``<grid_dir>/_grid.json``. Returns its path."""
    path = Path(grid_dir) / GRID_MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        path, {"grid": grid, "grid_file": str(grid_file), "run_ids": list(run_ids), "written_at": written_at}
    )
    return path


def read_grid_manifest(grid_dir: str | os.PathLike) -> dict | None:
    """The manifest written by :func:`write_grid_manifest`, or None if there is none (a grid never
    submitted through ``sweep submit``, or runs made by hand) or it cannot be read."""
    try:
        doc = read_json(Path(grid_dir) / GRID_MANIFEST)
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("run_ids"), list) else None
