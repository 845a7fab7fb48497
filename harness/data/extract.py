"""Frames at scale: decode the videos of video lists once into JPEG frame folders, the mmaction2 layout our
``frames`` format reads (``dsa-harness data prepare ... --extract-frames``).

Layout under ``out``::

    frames/<video path relative to its root, without extension>/img_00001.jpg ...   (frame i -> img_{i+1:05d}.jpg)
    frames_train.txt, frames_val.txt      raw-frame lists "FOLDER NUM_FRAMES LABEL", relative to out/frames
    extract.json                          the settings and the summary (below)

Frame ``i`` of a folder is frame ``i`` of the video as the video backend decodes it (the same indices the
``video`` format samples), resized so that its short side is ``short_side`` (never enlarged; Pillow's bilinear,
antialiased) and saved with Pillow at JPEG ``quality``. Videos are extracted in ``workers`` processes with a
progress line; each is written into ``<folder>.partial`` and renamed to ``<folder>`` when complete, so a killed
run continues where it stopped (complete folders are kept, a half-written one is redone). A folder holding an
extraction with other settings (short side, quality, template) is refused, naming what differs. A video that
cannot be decoded is listed (list, line, error) and left out of the frame lists; the summary counts it. A full
disk stops the extraction with a message; the half-written folder is removed (nothing is left as if complete).
Before starting, the disk space is estimated from the first video (its frames' JPEG size x the number of videos)
and a folder without room for it is refused.

``extract.json``: ``{"settings": {"short_side", "quality", "frame_template", "backend"}, "splits": {split:
{"list", "videos", "extracted", "kept", "unreadable", "frame_list"}}, "unreadable": [{"split", "line", "path",
"error"}], "bytes", "estimate_bytes", "seconds", "data": {"format", "root", "train", "val", "test",
"frame_template"}}``.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from harness.data.annotations import VideoRecord
from harness.errors import ConfigError, HarnessError
from harness.results.rundir import atomic_write_bytes, atomic_write_json

FRAME_TEMPLATE = "img_{:05d}.jpg"
"""mmaction2's name of frame i (from 1), what ``data.frame_template`` reads by default."""
CHUNK = 32
"""Frames decoded per call (bounds a worker's memory)."""


class DiskFullError(HarnessError, OSError):
    """The disk filled up during extraction."""


def _settings(short_side: int | None, quality: int, backend: str) -> dict:
    if short_side is not None and short_side < 1:
        raise ConfigError(f"--short-side {short_side}: must be >= 1 (or omitted to keep the videos' size)")
    if not 1 <= quality <= 100:
        raise ConfigError(f"--quality {quality}: must be in 1..100 (JPEG quality)")
    return {"short_side": short_side, "quality": int(quality), "frame_template": FRAME_TEMPLATE, "backend": backend}


def _target_size(h: int, w: int, short_side: int | None) -> tuple[int, int]:
    if short_side is None or min(h, w) <= short_side:
        return h, w
    if h <= w:
        return short_side, max(1, round(w * short_side / h))
    return max(1, round(h * short_side / w)), short_side


def _write_frames(frames: np.ndarray, folder: Path, first: int, settings: dict) -> int:
    """Save uint8 ``(k, H, W, 3)`` frames as ``folder``/img_{first+1:05d}.jpg ...; returns the bytes written."""
    from PIL import Image

    size = None
    written = 0
    for j, frame in enumerate(frames):
        image = Image.fromarray(frame)
        size = size or _target_size(frame.shape[0], frame.shape[1], settings["short_side"])
        if size != frame.shape[:2]:
            image = image.resize((size[1], size[0]), Image.BILINEAR)
        path = folder / settings["frame_template"].format(first + j + 1)
        image.save(path, format="JPEG", quality=settings["quality"])
        written += path.stat().st_size
    return written


def extract_video(path: str, folder: str, settings: dict, where: str = "", limit: int | None = None) -> dict:
    """Extract one video into ``folder`` (through ``folder.partial``; see the module docstring). Returns
    ``{"ok", "num_frames", "bytes", "error", "disk_full"}``; ``limit``: only the first frames (the estimate)."""
    from harness.data.video import CorruptVideoError, decode_frames, open_video

    final, partial = Path(folder), Path(folder + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
        reader = open_video(path, 1, where, settings["backend"])
        n = len(reader) if limit is None else min(limit, len(reader))
        written = 0
        for start in range(0, n, CHUNK):
            frames = decode_frames(reader, np.arange(start, min(n, start + CHUNK)), path, where)
            written += _write_frames(frames, partial, start, settings)
        if limit is None:
            os.replace(partial, final)
        else:
            shutil.rmtree(partial, ignore_errors=True)
        return {"ok": True, "num_frames": n, "bytes": written, "error": None, "disk_full": False}
    except CorruptVideoError as e:
        shutil.rmtree(partial, ignore_errors=True)
        return {"ok": False, "num_frames": 0, "bytes": 0, "error": e.detail or str(e), "disk_full": False}
    except OSError as e:
        shutil.rmtree(partial, ignore_errors=True)
        full = e.errno in (errno.ENOSPC, errno.EDQUOT)
        return {"ok": False, "num_frames": 0, "bytes": 0, "error": f"{e.strerror}: {e.filename}", "disk_full": full}


def _extract_job(job):
    return extract_video(*job)


def _folder_of(record: VideoRecord, root: Path) -> str:
    rel = os.path.relpath(record.path, root)
    return str(Path(rel).with_suffix("")) if not rel.startswith("..") else Path(record.path).stem


def _check_settings(out: Path, settings: dict) -> None:
    """Refuse an ``out`` holding an extraction with other settings, naming what differs."""
    done = out / "extract.json"
    if not done.is_file():
        return
    import json

    try:
        before = json.loads(done.read_text()).get("settings", {})
    except (OSError, ValueError) as e:
        raise ConfigError(f"{done}: unreadable ({e}); remove it or extract into another --out") from None
    differ = [f"{k} {before.get(k)!r} there, {v!r} asked" for k, v in settings.items() if before.get(k) != v]
    if differ:
        raise ConfigError(f"{out} holds frames extracted with other settings ({'; '.join(differ)}): use another --out")


def _estimate(first: VideoRecord, folders: int, out: Path, settings: dict) -> tuple[int, int]:
    """(estimated bytes of the whole extraction, free bytes at ``out``): the first video's first frames' JPEG
    size per frame x its frame count x the number of videos."""
    from harness.data.video import open_video

    probe = out / ".estimate"
    result = extract_video(first.path, str(probe), settings, first.where, limit=8)
    shutil.rmtree(probe, ignore_errors=True)
    if not result["ok"] or not result["num_frames"]:
        return 0, shutil.disk_usage(out).free
    per_frame = result["bytes"] / result["num_frames"]
    total = int(per_frame * len(open_video(first.path, backend=settings["backend"])) * folders)
    return total, shutil.disk_usage(out).free


def extract_frames(
    splits: dict[str, list[VideoRecord]],
    root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    short_side: int | None = 256,
    quality: int = 95,
    backend: str = "auto",
    workers: int | None = None,
    progress: bool = True,
    lists: dict[str, str] | None = None,
) -> dict:
    """Extract the videos of ``splits`` (``{"train": records, "val": records}``, paths under ``root``) into
    ``out`` (see the module docstring); returns the summary (also written to ``out/extract.json``)."""
    from harness.data.progress import progress as progress_bar

    t0 = time.perf_counter()
    out, root = Path(out), Path(root)
    settings = _settings(short_side, quality, backend)
    out.mkdir(parents=True, exist_ok=True)
    _check_settings(out, settings)
    frames_root = out / "frames"
    jobs: dict[str, tuple] = {}  # folder -> job (a video listed in two splits is extracted once)
    for records in splits.values():
        for r in records:
            folder = str(frames_root / _folder_of(r, root))
            if folder in jobs and jobs[folder][0] != r.path:
                raise ConfigError(f"{r.path} and {jobs[folder][0]} would share the frame folder {folder}; rename one")
            jobs.setdefault(folder, (r.path, folder, settings, r.where))
    todo = [job for folder, job in jobs.items() if not Path(folder).is_dir()]
    estimate, free = _estimate(VideoRecord(todo[0][0], 0), len(todo), out, settings) if todo else (0, 0)
    if estimate > free:
        raise DiskFullError(
            f"extracting {len(todo)} videos into {out} needs about {estimate / 1e9:.2f} GB (from the first video), "
            f"{free / 1e9:.2f} GB free: free space or choose another --out (or a smaller --short-side / --quality)"
        )
    atomic_write_json(out / "extract.json", {"settings": settings, "complete": False})
    if progress:
        print(f"extracting {len(todo)} videos ({len(jobs) - len(todo)} already done), about {estimate / 1e6:.0f} MB")
    results = {folder: {"ok": True, "kept": True} for folder in jobs if Path(folder).is_dir()}
    bar = progress_bar(len(todo), "extracting frames", "video", enabled=progress)
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    try:
        with ProcessPoolExecutor(workers) as pool:
            for job, res in zip(todo, pool.map(_extract_job, todo, chunksize=1)):
                if res["disk_full"]:
                    pool.shutdown(wait=True, cancel_futures=True)
                    _remove_partials(frames_root)
                    raise DiskFullError(
                        f"disk full while writing the frames of {job[0]} into {job[1]} ({res['error']}): free space, "
                        f"then re-run the same command (the {sum(1 for r in results.values() if r['ok'])} videos "
                        "done are kept; the half-written one was removed)"
                    )
                results[job[1]] = res
                bar.update()
    finally:
        bar.close()
    return _finish(out, root, splits, settings, results, estimate, t0, lists or {})


def _remove_partials(frames_root: Path) -> None:
    for partial in frames_root.rglob("*.partial"):
        shutil.rmtree(partial, ignore_errors=True)


def _finish(out: Path, root: Path, splits: dict, settings: dict, results: dict, estimate: int, t0: float, lists):
    """Write the frame lists and extract.json; returns the summary."""
    frames_root = out / "frames"
    summary = {"settings": settings, "complete": True, "splits": {}, "unreadable": [], "estimate_bytes": estimate}
    total = 0
    for split, records in splits.items():
        lines, counts = [], {"videos": len(records), "extracted": 0, "kept": 0, "unreadable": 0}
        for r in records:
            folder = frames_root / _folder_of(r, root)
            res = results[str(folder)]
            if not res["ok"]:
                counts["unreadable"] += 1
                summary["unreadable"].append({"split": split, "line": r.where, "path": r.path, "error": res["error"]})
                continue
            n = res.get("num_frames") or _count_frames(folder, settings["frame_template"])
            counts["kept" if res.get("kept") else "extracted"] += 1
            total += res.get("bytes", 0)
            lines.append(f"{folder.relative_to(frames_root)} {n} {r.label}")
        target = out / f"frames_{split}.txt"
        atomic_write_bytes(target, ("\n".join(lines) + "\n" if lines else "").encode())
        summary["splits"][split] = {"list": lists.get(split), **counts, "frame_list": str(target)}
    summary["bytes"] = total
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    val = str(out / "frames_val.txt") if "val" in splits else None
    summary["data"] = {
        "format": "frames",
        "root": str(frames_root),
        "train": str(out / "frames_train.txt") if "train" in splits else None,
        "val": val,
        "test": val,
        "frame_template": settings["frame_template"],
    }
    atomic_write_json(out / "extract.json", summary)
    return summary


def _count_frames(folder: Path, template: str) -> int:
    """The run of consecutive frame files from the first (a folder extracted by an earlier run)."""
    n = 0
    while (folder / template.format(n + 1)).is_file():
        n += 1
    return n
