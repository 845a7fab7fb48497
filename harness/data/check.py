"""Scan a dataset for unreadable and too-short videos (``dsa-harness data check``).

Every annotated video is opened with the same code the dataset uses (the video backend; in ``auto`` mode
torchcodec or decord, and PyAV for a file that one cannot read; Pillow for raw-frame folders) and a few frames
are decoded: the first, the middle and the last, which catches missing, zero-byte, truncated and
undecodable files. A video with fewer than ``min_frames`` frames is *too short*: it is still usable
(the sampler clamps or loops, see :mod:`harness.data.sampling`) but its snippets repeat frames.

The scan runs in a process pool with a progress bar; the report is a dict (written as JSON
and Markdown by :func:`write_report`):

    {"annotation", "root", "format", "backend", "min_frames", "num_videos", "num_ok",
     "num_unreadable", "num_too_short", "num_fallback", "unreadable": [{"path", "line", "reason", "error"}],
     "too_short": [{"path", "line", "num_frames"}], "fallback": [{"path", "line", "cause"}],
     "frames": {"min", "median", "max"}, "label_counts": {label: count}, "seconds"}

``fallback`` lists the videos auto's first decoder cannot read that PyAV decodes (backend ``auto``), with the
cause, e.g. "decord cannot decode this width (48 px); read with PyAV"; with backend ``decord`` they are unreadable and
the error names the same cause.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from harness.data.annotations import VideoRecord, read_annotations
from harness.data.video import (
    CorruptVideoError,
    check_video_backend,
    decode_frames,
    fallback_cause,
    open_video,
    read_frame_folder,
)
from harness.results.rundir import atomic_write_bytes, atomic_write_json

DEEP_CHUNK = 16
"""Frames decoded per call in a deep check (bounds the memory of one probe)."""


def probe(
    record: VideoRecord,
    format: str = "video",
    frame_template: str = "img_{:05d}.jpg",
    frame_start: int = 1,
    deep: bool = False,
    backend: str = "auto",
) -> dict:
    """Open one record and decode its first, middle and last frame, or with ``deep`` every frame (a file
    damaged in the middle decodes its first, middle and last frame and fails only in between).

    Returns ``{"ok": bool, "num_frames": int | None, "reason": str | None, "error": str | None,
    "fallback": str | None}`` (fallback: why PyAV read a video decord cannot, backend ``auto``).
    """
    fallback = None
    try:
        if format == "frames":
            n = int(record.num_frames)
            wanted = np.arange(n) if deep else np.array(sorted({0, n // 2, n - 1}))
            for start in range(0, len(wanted), DEEP_CHUNK):
                read_frame_folder(
                    record.path, wanted[start : start + DEEP_CHUNK], frame_template, frame_start, record.where
                )
        else:
            reader = open_video(record.path, 1, record.where, backend)
            n = len(reader)
            wanted = np.arange(n) if deep else np.array(sorted({0, n // 2, n - 1}))
            for start in range(0, len(wanted), DEEP_CHUNK):
                decode_frames(reader, wanted[start : start + DEEP_CHUNK], record.path, record.where)
            fallback = reader.fallback or (fallback_cause(record.path) if backend == "auto" else None)
        return {"ok": True, "num_frames": n, "reason": None, "error": None, "fallback": fallback}
    except CorruptVideoError as e:
        return {"ok": False, "num_frames": None, "reason": e.reason, "error": e.detail or str(e), "fallback": None}


def _probe_job(job):
    return probe(*job)


def probe_records(
    records: list[VideoRecord],
    format: str = "video",
    *,
    frame_template: str = "img_{:05d}.jpg",
    frame_start: int = 1,
    deep: bool = False,
    backend: str = "auto",
    workers: int | None = None,
    progress: bool = True,
    desc: str = "checking videos",
) -> list[dict]:
    """:func:`probe` every record, in a process pool of ``workers`` (default: all CPU cores) with a progress
    bar; the results in record order."""
    from harness.data.progress import progress as progress_bar

    check_video_backend(backend)
    jobs = [(r, format, frame_template, frame_start, deep, backend) for r in records]
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    bar = progress_bar(len(jobs), desc, "video", enabled=progress)  # a bar on a terminal, else plain lines
    results = []
    try:
        if workers == 1:
            for job in jobs:
                results.append(_probe_job(job))
                bar.update()
        else:
            with ProcessPoolExecutor(workers) as pool:
                for res in pool.map(_probe_job, jobs, chunksize=max(1, min(16, len(jobs) // (8 * workers)))):
                    results.append(res)
                    bar.update()
    finally:
        bar.close()
    return results


def check_dataset(
    annotation: str | os.PathLike,
    root: str | os.PathLike | None = None,
    format: str = "video",
    *,
    min_frames: int = 57,
    workers: int | None = None,
    frame_template: str = "img_{:05d}.jpg",
    frame_start: int = 1,
    class_index: str | os.PathLike | None = None,
    progress: bool = True,
    deep: bool = False,
    backend: str = "auto",
) -> dict:
    """Scan every video of ``annotation`` (see the module docstring); returns the report dict.

    min_frames: videos with fewer frames are listed as too short (default 57 = one clip of
                8 frames at interval 8, the spec's sampling).
    workers:    processes (default: all CPU cores).
    deep:       decode every frame instead of the first, middle and last (slower; finds damage inside).
    backend:    video backend, "auto" | "decord" | "pyav" (as ``data.video_backend``).
    """
    check_video_backend(backend)
    t0 = time.perf_counter()
    records = read_annotations(annotation, format, root, class_index=class_index)
    results = probe_records(
        records,
        format,
        frame_template=frame_template,
        frame_start=frame_start,
        deep=deep,
        backend=backend,
        workers=workers,
        progress=progress,
    )
    unreadable, too_short, lengths, fallback = [], [], [], []
    for r, res in zip(records, results):
        if res["fallback"]:
            fallback.append({"path": r.path, "line": r.line, "cause": res["fallback"]})
        if not res["ok"]:
            unreadable.append({"path": r.path, "line": r.line, "reason": res["reason"], "error": res["error"]})
            continue
        lengths.append(res["num_frames"])
        if res["num_frames"] < min_frames:
            too_short.append({"path": r.path, "line": r.line, "num_frames": res["num_frames"]})
    counts = Counter(r.label for r in records)
    return {
        "annotation": str(annotation),
        "root": None if root is None else str(root),
        "format": format,
        "backend": backend if format != "frames" else None,
        "deep": bool(deep),
        "min_frames": int(min_frames),
        "num_videos": len(records),
        "num_ok": len(records) - len(unreadable),
        "num_unreadable": len(unreadable),
        "num_too_short": len(too_short),
        "num_fallback": len(fallback),
        "unreadable": unreadable,
        "too_short": too_short,
        "fallback": fallback,
        "frames": (
            {"min": int(min(lengths)), "median": float(np.median(lengths)), "max": int(max(lengths))}
            if lengths
            else None
        ),
        "label_counts": {int(k): int(v) for k, v in sorted(counts.items())},
        "seconds": round(time.perf_counter() - t0, 3),
    }


def report_markdown(report: dict, limit: int = 50) -> str:
    """A short human-readable Markdown summary of a check report."""
    lines = [f"# Data check: {report['annotation']}", ""]
    backend = f", video backend: {report['backend']}" if report.get("backend") else ""
    lines.append(f"- format: {report['format']}{backend}, root: {report['root']}")
    lines.append(
        f"- videos: {report['num_videos']}, readable: {report['num_ok']}, "
        f"unreadable: {report['num_unreadable']}, "
        f"too short (< {report['min_frames']} frames): {report['num_too_short']}"
        + (f", read with PyAV (decord cannot): {report['num_fallback']}" if report.get("num_fallback") else "")
    )
    if report["frames"]:
        f = report["frames"]
        lines.append(f"- frames per video: min {f['min']}, median {f['median']:g}, max {f['max']}")
    lines.append(f"- classes present: {len(report['label_counts'])}; scan took {report['seconds']} s")
    for title, key, cols in (
        ("Unreadable", "unreadable", ("line", "reason", "path", "error")),
        ("Too short", "too_short", ("line", "num_frames", "path")),
        ("Read with PyAV (decord cannot)", "fallback", ("line", "cause", "path")),
    ):
        items = report.get(key, [])
        if not items:
            continue
        lines += ["", f"## {title} ({len(items)})", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for item in items[:limit]:
            lines.append("| " + " | ".join(str(item[c]).replace("|", "\\|") for c in cols) + " |")
        if len(items) > limit:
            lines.append(f"\n... and {len(items) - limit} more (see the JSON report)")
    return "\n".join(lines) + "\n"


def default_report_path(annotation: str | os.PathLike) -> Path:
    """``<annotation>.check.json`` next to the annotation file."""
    annotation = Path(annotation)
    return annotation.with_name(annotation.name + ".check.json")


def write_report(report: dict, path: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``path`` (JSON) and the same name with ``.md`` (Markdown), atomically."""
    path = Path(path)
    md = path.with_suffix(".md") if path.suffix == ".json" else path.with_name(path.name + ".md")
    atomic_write_json(path, report)
    atomic_write_bytes(md, report_markdown(report).encode())
    return path, md


def compare_decoders(
    records: list[VideoRecord], backends: list[str], *, videos: int = 8, frames: int = 16, seed: int = 0
) -> dict:
    """Decode the same frames of ``videos`` records drawn at random (``seed``) with every decoder of
    ``backends`` (``dsa-harness data check --decoders``): decoders disagree on odd files (variable frame rate,
    B-frames, odd sizes), and a backend is interchangeable only where they agree.

    Per video: each backend's frame count, and the largest absolute difference (0-255) between its frames and
    the reference's (the first backend that decoded it) at ``frames`` indices spread over the shortest count
    (first and last included), or the error that stopped it. Returns ``{"backends", "videos": [{"path", "line",
    "reference", "num_frames": {backend: n}, "max_abs_diff": {backend: int}, "errors": {backend: text}}],
    "identical": bool}``;
    ``identical``: every backend opened every video, counted the same frames and gave the same bytes."""
    if len(backends) < 2:
        raise ValueError(f"--decoders needs two installed decoders to compare; installed: {', '.join(backends)}")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(records), size=min(videos, len(records)), replace=False).tolist())
    out = []
    for i in chosen:
        record = records[i]
        counts, decoded, errors = {}, {}, {}
        readers = {}
        for b in backends:
            try:
                readers[b] = open_video(record.path, 1, record.where, b)
                counts[b] = len(readers[b])
            except CorruptVideoError as e:
                errors[b] = e.detail or str(e)
        if counts:
            n = min(counts.values())
            wanted = np.unique(np.linspace(0, n - 1, num=min(frames, n)).round().astype(np.int64))
            for b, reader in readers.items():
                try:
                    decoded[b] = decode_frames(reader, wanted, record.path, record.where)
                except CorruptVideoError as e:
                    errors[b] = e.detail or str(e)
        ref_backend = next((b for b in backends if b in decoded), None)  # the first that decoded the video
        ref = decoded.get(ref_backend)
        diff = {
            b: int(np.abs(x.astype(np.int16) - ref.astype(np.int16)).max()) if x.shape == ref.shape else 255
            for b, x in decoded.items()
        }
        out.append(
            {
                "path": record.path,
                "line": record.where,
                "reference": ref_backend,
                "num_frames": counts,
                "max_abs_diff": diff,
                "errors": errors,
            }
        )
    identical = all(
        not v["errors"] and len(set(v["num_frames"].values())) == 1 and not any(v["max_abs_diff"].values()) for v in out
    )
    return {"backends": list(backends), "videos": out, "identical": identical}


def format_decoder_comparison(report: dict) -> str:
    """The lines ``data check --decoders`` prints: one per video, then the verdict."""
    lines = [
        f"frames of {len(report['videos'])} random videos, each decoder against the first that read it (max "
        "|difference|, 0-255):"
    ]
    for v in report["videos"]:
        ref, parts = v["reference"], []
        for b in report["backends"]:
            if b in v["errors"]:
                parts.append(f"{b}: failed ({v['errors'][b][:100]})")
            elif b != ref:
                parts.append(f"{b}: {v['max_abs_diff'].get(b, '-')} ({v['num_frames'].get(b)} frames)")
        counts = set(v["num_frames"].values())
        count = f"{v['num_frames'].get(ref)} frames" if len(counts) == 1 else "frame counts differ"
        lines.append(f"  {v['path']} ({v['line']}, {count}, against {ref}): " + "; ".join(parts))
    verdict = "identical" if report["identical"] else "NOT identical: pick the backend with care (see above)"
    lines.append(f"decoders {', '.join(report['backends'])}: {verdict}")
    return "\n".join(lines)
