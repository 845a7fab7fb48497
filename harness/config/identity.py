"""Run identity: which fields enter the run id (:data:`NOT_IDENTITY`, :data:`INPUT_FILES`,
:data:`IDENTITY_VERSION`), the fingerprints of input files and of the videos a list names (with their
per-process caches and :func:`fingerprint_scope`), canonical JSON, the run id hash, and identity diffs.
See :mod:`harness.config`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import MISSING
from pathlib import Path
from typing import Any

from harness.config.sections import DataConfig

IDENTITY_VERSION = 3
"""Bumped whenever the identity rule changes; part of every hash (see the docstring of harness.config)."""
CARRIED_KEYS = ("run_id", "grid", "resources", "identity_version", "inputs", "model_resolved")
"""Keys a config.json may hold besides the run's own sections: written by the launcher (run_id, grid,
resources), by RunConfig.record (identity_version, inputs) or by earlier versions (model_resolved); not config."""

INPUT_FILES = ("model.pretrained", "data.train", "data.val", "data.test", "data.classes")
"""Fields naming input files: hashed by content into the identity (``inputs``), never by path."""
NOT_IDENTITY = (
    "data.root",
    "data.num_workers",
    "data.decode_threads",
    "data.cache_decoded",
    "data.video_backend",
    "train.threads",
    "train.checkpoint_every_steps",
    "train.log_every_steps",
    "train.log_to",
    "eval.save_scores",
)
"""Fields that cannot change a result (same samples, same steps; tested) and stay out of the run id.
``eval.save_scores`` changes what is stored (the full score vectors in predictions.parquet), not the result."""


_HASHES: dict[tuple, str] = {}


def file_fingerprint(path: str | None) -> str | None:
    """``sha256:<16 hex>`` of a file's bytes (cached per process by path, size and mtime), or
    ``path:<path>`` when it cannot be read (the identity is then provisional); None for no file."""
    if not path:
        return None
    try:
        st = os.stat(path)
        key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
        if key not in _HASHES:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            _HASHES[key] = "sha256:" + h.hexdigest()[:16]
        return _HASHES[key]
    except OSError:
        return f"path:{path}"


VIDEO_SAMPLE_BYTES = 4096
"""Bytes read from the start of every listed video for :func:`videos_fingerprint` (with its size)."""
_VIDEO_FPS: dict[tuple, str] = {}
_SCOPE: dict[tuple, str] | None = None


@contextlib.contextmanager
def fingerprint_scope():
    """Within it (nested: the outermost counts), each list's :func:`videos_fingerprint` is computed once: a
    grid's runs, or one command's several identity checks, share their lists' fingerprints. Outside, every call
    looks at the videos again (a video changed in place is seen). Also a decorator (``@fingerprint_scope()``)."""
    global _SCOPE
    outer = _SCOPE
    if outer is None:
        _SCOPE = {}
    try:
        yield
    finally:
        if outer is None:
            _SCOPE = None


def _video_entry(path: str) -> str:
    """``<size>:<sha256 of the first VIDEO_SAMPLE_BYTES, 16 hex>`` of one video (a raw-frame folder: the
    sizes of its first files), ``missing`` when it is not there; cached per process by path, size and mtime."""
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    key = (path, st.st_size, st.st_mtime_ns)
    if key not in _VIDEO_FPS:
        if os.path.isdir(path):  # raw frames: the folder's file names and sizes, a sample of them
            with os.scandir(path) as it:
                names = sorted(e.name for e in it)
            sample = [f"{n}={os.stat(os.path.join(path, n)).st_size}" for n in names[:2] + names[-2:]]
            _VIDEO_FPS[key] = f"dir{len(names)}:" + ",".join(sample)
        else:
            try:
                with open(path, "rb") as f:
                    head = f.read(VIDEO_SAMPLE_BYTES)
            except OSError:
                return f"{st.st_size}:unreadable"
            _VIDEO_FPS[key] = f"{st.st_size}:{hashlib.sha256(head).hexdigest()[:16]}"
    return _VIDEO_FPS[key]


def videos_fingerprint(data: DataConfig, split: str) -> str | None:
    """``videos:<16 hex>``: a cheap fingerprint of the videos a split's list names, in list order: each
    one's size and a SHA-256 of its first :data:`VIDEO_SAMPLE_BYTES` bytes (``missing`` for an absent one),
    located as training locates them (``data.root``, else the list's folder) but hashed without that root:
    the same dataset at another path or on another machine has the same fingerprint, a copy whose videos
    were truncated, replaced or re-encoded has another. Why not more, or less: a size alone misses a file
    overwritten in place; a full hash reads every byte (terabytes for Kinetics-400), so this reads one 4 KiB
    block per video (the container header, where damage and re-encoding show), one stat + one small read:
    about 240k of each for Kinetics-400, done by 16 threads and once per process (cached by path, size and
    mtime). Bytes past the first block are not seen. None without the list; ``path:<list>`` when the list
    cannot be read (the id is then provisional)."""
    listed = getattr(data, split)
    if not listed:
        return None
    from harness.data.annotations import read_annotations

    root = data.root if data.root else str(Path(listed).resolve().parent)
    try:
        st = os.stat(listed)
    except OSError:
        return f"path:{listed}"
    key = (os.path.abspath(listed), st.st_size, st.st_mtime_ns, os.path.abspath(root), data.format)
    if _SCOPE is not None and key in _SCOPE:
        return _SCOPE[key]
    records = read_annotations(listed, data.format, root)  # a malformed line: AnnotationError naming file:line
    paths = [r.path for r in records]
    from concurrent.futures import ThreadPoolExecutor

    chunks = [paths[i : i + 512] for i in range(0, len(paths), 512)]
    with ThreadPoolExecutor(max_workers=min(16, len(chunks))) as pool:
        entries = [e for chunk in pool.map(lambda c: [_video_entry(p) for p in c], chunks) for e in chunk]
    fingerprint = "videos:" + hashlib.sha256("\n".join(entries).encode()).hexdigest()[:16]
    if _SCOPE is not None:
        _SCOPE[key] = fingerprint
    return fingerprint


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def run_id_of(identity: dict) -> str:
    """First 12 hex digits of the SHA-256 of the canonical JSON of an identity dict."""
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:12]


def identity_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two (identity or config) dicts, sorted."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k, MISSING), b.get(k, MISSING)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += identity_diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}")
    return out


def describe_diff(old: dict, new: dict, keys: list[str], limit: int = 6) -> str:
    """``key: old -> new`` for the first ``limit`` keys."""

    def get(d: dict, dotted: str) -> Any:
        for p in dotted.split("."):
            d = d.get(p, "<absent>") if isinstance(d, dict) else "<absent>"
        return d

    parts = [f"{k}: {get(old, k)!r} -> {get(new, k)!r}" for k in keys[:limit]]
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return "; ".join(parts) + more
