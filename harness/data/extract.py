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

``--transcode`` (:func:`transcode_videos`) re-encodes the videos instead, the same way (resumable, refused over
other settings, undecodable ones listed, a full disk stopped): ``transcoded/<path>.mp4`` (H.264, ``short_side``
never enlarged, constant frame rate, a keyframe every ``gop`` frames, ``crf``), the video lists
``transcoded_<split>.txt`` and ``transcode.json``.

``extract.json`` (``transcode.json`` alike): ``{"settings": {"short_side", "quality", "frame_template",
"backend"}, "splits": {split: {"list", "videos", "extracted", "kept", "unreadable", "out_list"}}, "unreadable":
[{"split", "line", "path", "error"}], "bytes", "estimate_bytes", "seconds", "data": {"format", "root", "train",
"val", "test", "frame_template"}}``.
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


def _transcode_settings(short_side: int | None, gop: int, fps: float | None, crf: int, backend: str) -> dict:
    if short_side is not None and short_side < 2:
        raise ConfigError(f"--short-side {short_side}: must be >= 2 (or omitted to keep the videos' size)")
    if gop < 1:
        raise ConfigError(f"--gop {gop}: must be >= 1 (frames between keyframes)")
    if fps is not None and not fps > 0:
        raise ConfigError(f"--fps {fps}: must be > 0 (or omitted for the source's average rate)")
    if not 0 <= crf <= 51:
        raise ConfigError(f"--crf {crf}: must be in 0..51 (H.264 quality, lower is better)")
    return {"short_side": short_side, "gop": int(gop), "fps": fps, "crf": int(crf), "backend": backend}


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


def _os_error(e: OSError) -> str:
    return f"{e.strerror or e}: {e.filename}" if e.filename else str(e.strerror or e)


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
        return {"ok": False, "num_frames": 0, "bytes": 0, "error": _os_error(e), "disk_full": full}


def transcode_video(path: str, target: str, settings: dict, where: str = "", limit: int | None = None) -> dict:
    """Re-encode one video to ``target`` (H.264 in mp4, short side ``settings["short_side"]`` never enlarged, even
    sides, constant ``fps`` (None: the source's average rate), keyframe every ``gop`` frames, ``crf``), through
    ``target.partial.mp4``; returns what :func:`extract_video` returns (``limit``: only the first frames)."""
    from fractions import Fraction

    import av

    from harness.data.video import CorruptVideoError, decode_frames, open_video

    final, partial = Path(target), Path(target + ".partial.mp4")
    partial.unlink(missing_ok=True)
    try:
        partial.parent.mkdir(parents=True, exist_ok=True)
        reader = open_video(path, 1, where, settings["backend"])
        n = len(reader) if limit is None else min(limit, len(reader))
        rate = Fraction(settings["fps"] or reader.fps or 25).limit_denominator(1001)
        with av.open(str(partial), "w", format="mp4") as container:
            stream = None
            for start in range(0, n, CHUNK):
                for frame in decode_frames(reader, np.arange(start, min(n, start + CHUNK)), path, where):
                    if stream is None:
                        h, w = _target_size(frame.shape[0], frame.shape[1], settings["short_side"])
                        stream = container.add_stream("libx264", rate=rate)
                        stream.width, stream.height, stream.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
                        stream.codec_context.gop_size = settings["gop"]
                        stream.codec_context.thread_count = 1
                        x264 = f"keyint={settings['gop']}:min-keyint={settings['gop']}:scenecut=0"
                        stream.options = {"crf": str(settings["crf"]), "preset": "veryfast", "x264-params": x264}
                    video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
                    video_frame = video_frame.reformat(width=stream.width, height=stream.height)
                    for packet in stream.encode(video_frame):
                        container.mux(packet)
            if stream is not None:
                for packet in stream.encode():
                    container.mux(packet)
        written = partial.stat().st_size
        if limit is None:
            os.replace(partial, final)
        else:
            partial.unlink(missing_ok=True)
        return {"ok": True, "num_frames": n, "bytes": written, "error": None, "disk_full": False}
    except CorruptVideoError as e:
        partial.unlink(missing_ok=True)
        return {"ok": False, "num_frames": 0, "bytes": 0, "error": e.detail or str(e), "disk_full": False}
    except OSError as e:
        partial.unlink(missing_ok=True)
        full = e.errno in (errno.ENOSPC, errno.EDQUOT)
        return {
            "ok": False,
            "num_frames": 0,
            "bytes": 0,
            "error": _os_error(e),
            "disk_full": full,
        }


KINDS = {
    # kind: (sub-folder, summary file, list prefix, job, what the progress line says)
    "frames": ("frames", "extract.json", "frames", extract_video, "extracting frames"),
    "transcode": ("transcoded", "transcode.json", "transcoded", transcode_video, "transcoding"),
}


def _job(job):
    kind, *args = job
    return KINDS[kind][3](*args)


def _dest_of(record: VideoRecord, root: Path, base: Path, kind: str) -> str:
    """Where ``record``'s frames (a folder) or re-encoded video (an .mp4) go: its path under ``root`` without the
    extension, under ``base``."""
    rel = os.path.relpath(record.path, root)
    stem = str(Path(rel).with_suffix("")) if not rel.startswith("..") else Path(record.path).stem
    return str(base / (stem + (".mp4" if kind == "transcode" else "")))


def _check_settings(done: Path, settings: dict) -> None:
    """Refuse an ``out`` holding a conversion with other settings (summary ``done``), naming what differs."""
    if not done.is_file():
        return
    import json

    try:
        before = json.loads(done.read_text()).get("settings", {})
    except (OSError, ValueError) as e:
        raise ConfigError(f"{done}: unreadable ({e}); remove it or write into another --out") from None
    differ = [f"{k} {before.get(k)!r} there, {v!r} asked" for k, v in settings.items() if before.get(k) != v]
    if differ:
        raise ConfigError(
            f"{done.parent} holds videos converted with other settings ({'; '.join(differ)}): use another --out"
        )


def _estimate(kind: str, first: VideoRecord, count: int, out: Path, settings: dict) -> tuple[int, int]:
    """(estimated bytes of the whole conversion, free bytes at ``out``): the first video's first 8 frames' size
    per frame x its frame count x the number of videos."""
    from harness.data.video import open_video

    probe = out / (".estimate.mp4" if kind == "transcode" else ".estimate")
    result = KINDS[kind][3](first.path, str(probe), settings, first.where, 8)
    if not result["ok"] or not result["num_frames"]:
        return 0, shutil.disk_usage(out).free
    per_frame = result["bytes"] / result["num_frames"]
    total = int(per_frame * len(open_video(first.path, backend=settings["backend"])) * count)
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
    ``out`` as JPEG frame folders (see the module docstring); returns the summary (also ``out/extract.json``)."""
    settings = _settings(short_side, quality, backend)
    return _convert("frames", splits, Path(root), Path(out), settings, workers, progress, lists or {})


def transcode_videos(
    splits: dict[str, list[VideoRecord]],
    root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    short_side: int | None = 256,
    gop: int = 32,
    fps: float | None = None,
    crf: int = 23,
    backend: str = "auto",
    workers: int | None = None,
    progress: bool = True,
    lists: dict[str, str] | None = None,
) -> dict:
    """Re-encode the videos of ``splits`` into ``out/transcoded/<path>.mp4`` (:func:`transcode_video`) with the
    video lists ``out/transcoded_<split>.txt``, resumable like :func:`extract_frames`; summary
    ``out/transcode.json``."""
    settings = _transcode_settings(short_side, gop, fps, crf, backend)
    return _convert("transcode", splits, Path(root), Path(out), settings, workers, progress, lists or {})


def _convert(kind: str, splits: dict, root: Path, out: Path, settings: dict, workers, progress, lists) -> dict:
    """The resumable parallel conversion both public functions run."""
    from harness.data.progress import progress as progress_bar

    t0 = time.perf_counter()
    sub, summary_name, _, _, what = KINDS[kind]
    out.mkdir(parents=True, exist_ok=True)
    _check_settings(out / summary_name, settings)
    jobs: dict[str, tuple] = {}  # destination -> job (a video listed in two splits is converted once)
    for records in splits.values():
        for r in records:
            dest = _dest_of(r, root, out / sub, kind)
            if dest in jobs and jobs[dest][1] != r.path:
                raise ConfigError(f"{r.path} and {jobs[dest][1]} would both be written to {dest}; rename one")
            jobs.setdefault(dest, (kind, r.path, dest, settings, r.where))
    todo = [job for dest, job in jobs.items() if not os.path.exists(dest)]
    estimate, free = _estimate(kind, VideoRecord(todo[0][1], 0), len(todo), out, settings) if todo else (0, 0)
    if estimate > free:
        raise DiskFullError(
            f"{what} {len(todo)} videos into {out} needs about {estimate / 1e9:.2f} GB (from the first video), "
            f"{free / 1e9:.2f} GB free: free space or choose another --out (or a smaller --short-side / --quality)"
        )
    atomic_write_json(out / summary_name, {"settings": settings, "complete": False})
    if progress:
        print(f"{what}: {len(todo)} videos ({len(jobs) - len(todo)} already done), about {estimate / 1e6:.0f} MB")
    results = {dest: {"ok": True, "kept": True} for dest in jobs if os.path.exists(dest)}
    bar = progress_bar(len(todo), what, "video", enabled=progress)
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    try:
        with ProcessPoolExecutor(workers) as pool:
            for job, res in zip(todo, pool.map(_job, todo, chunksize=1)):
                if res["disk_full"]:
                    pool.shutdown(wait=True, cancel_futures=True)
                    _remove_partials(out / sub)
                    raise DiskFullError(
                        f"disk full while writing {job[1]} into {job[2]} ({res['error']}): free space, then re-run "
                        f"the same command (the {sum(1 for r in results.values() if r['ok'])} videos done are kept; "
                        "the half-written one was removed)"
                    )
                results[job[2]] = res
                bar.update()
    finally:
        bar.close()
    return _finish(kind, out, root, splits, settings, results, estimate, t0, lists)


def _remove_partials(base: Path) -> None:
    for partial in [*base.rglob("*.partial"), *base.rglob("*.partial.mp4")]:
        shutil.rmtree(partial, ignore_errors=True) if partial.is_dir() else partial.unlink(missing_ok=True)


def _finish(kind: str, out: Path, root: Path, splits: dict, settings: dict, results: dict, estimate: int, t0, lists):
    """Write the lists and the summary; returns the summary."""
    sub, summary_name, prefix, _, _ = KINDS[kind]
    base = out / sub
    summary = {"settings": settings, "complete": True, "splits": {}, "unreadable": [], "estimate_bytes": estimate}
    total = 0
    for split, records in splits.items():
        lines, counts = [], {"videos": len(records), "extracted": 0, "kept": 0, "unreadable": 0}
        for r in records:
            dest = Path(_dest_of(r, root, base, kind))
            res = results[str(dest)]
            if not res["ok"]:
                counts["unreadable"] += 1
                summary["unreadable"].append({"split": split, "line": r.where, "path": r.path, "error": res["error"]})
                continue
            counts["kept" if res.get("kept") else "extracted"] += 1
            total += res.get("bytes", 0)
            if kind == "frames":
                n = res.get("num_frames") or _count_frames(dest, settings["frame_template"])
                lines.append(f"{dest.relative_to(base)} {n} {r.label}")
            else:
                lines.append(f"{dest.relative_to(base)} {r.label}")
        target = out / f"{prefix}_{split}.txt"
        atomic_write_bytes(target, ("\n".join(lines) + "\n" if lines else "").encode())
        summary["splits"][split] = {"list": lists.get(split), **counts, "out_list": str(target)}
    summary["bytes"] = total
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    train = str(out / f"{prefix}_train.txt") if "train" in splits else None
    val = str(out / f"{prefix}_val.txt") if "val" in splits else None
    summary["data"] = {
        "format": "frames" if kind == "frames" else "video",
        "root": str(base),
        "train": train,
        "val": val,
        "test": val,
    }
    if kind == "frames":
        summary["data"]["frame_template"] = settings["frame_template"]
    atomic_write_json(out / summary_name, summary)
    return summary


def _count_frames(folder: Path, template: str) -> int:
    """The run of consecutive frame files from the first (a folder extracted by an earlier run)."""
    n = 0
    while (folder / template.format(n + 1)).is_file():
        n += 1
    return n
