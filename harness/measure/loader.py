"""The data path's speed: videos/s of one loader process for a dataset's own videos, sampling and crop,
beside the raw decoder of the same backend, in interleaved rounds (``dsa-harness data bench``).

For each backend (video lists: decord and / or PyAV; raw-frame lists: JPEG folders) and each round:

- ``raw``:     the backend alone decoding the frames the sampler picks (decord ``get_batch``; PyAV decoding
               the stream up to the last wanted frame; JPEG: Pillow opening each wanted file), nothing else;
- ``harness``: ``VideoDataset[i]`` as a training loader worker runs it (open, decode the same frames, the
               training transform: random-resized crop, flip), one process, no DataLoader.

Both read the same ``--videos`` videos at the same frame indices (the dataset's ``sample_indices`` of
epoch 0), one after the other, their order alternating between rounds (so that a machine's drift hits both
alike). videos/s = videos / seconds of one pass; ``harness / raw`` = the median over rounds of the
per-round ratio of throughputs, with its bootstrap 95% interval (``harness.measure.latency.paired_ratio``).
A process is one core's worth of loading: a loader with W workers delivers up to W times it.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from harness.data.annotations import read_annotations
from harness.data.backends import DECODERS, check_video_backend, installed_backends
from harness.data.sampling import SnippetSampler
from harness.data.transforms import train_transform
from harness.data.video import VideoDataset, open_video
from harness.errors import ConfigError
from harness.measure.environment import describe_environment
from harness.measure.latency import paired_ratio


def check_backends(backends: list[str]) -> None:
    """Refuse, in one line, a backend that is unknown or cannot decode here (naming the installed ones and how
    to install the missing one)."""
    have = installed_backends()
    for b in backends:
        if b not in DECODERS:
            raise ConfigError(f"--backend {b}: unknown video backend; installed: {', '.join(have) or 'none'}")
        check_video_backend(b, installed=True, option="--backend")


def _raw_decode(backend: str, path: str, indices: np.ndarray) -> np.ndarray:
    """The frames at ``indices`` (flat) by the backend alone (uint8 (N, H, W, 3))."""
    if backend == "decord":
        import decord

        return decord.VideoReader(path, num_threads=1).get_batch(list(indices)).asnumpy()
    if backend.startswith("torchcodec"):
        from torchcodec.decoders import VideoDecoder

        device = "cuda" if backend == "torchcodec-cuda" else "cpu"
        decoder = VideoDecoder(path, seek_mode="exact", num_ffmpeg_threads=1, device=device)
        return decoder.get_frames_at([int(i) for i in indices]).data.permute(0, 2, 3, 1).cpu().numpy()
    import av

    wanted, last, out = set(int(i) for i in indices), int(max(indices)), {}
    with av.open(path) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                out[i] = frame.to_ndarray(format="rgb24")
            if i >= last:
                break
    return np.stack([out[int(i)] for i in indices])


def _raw_frames(folder: str, indices: np.ndarray, template: str, start: int) -> np.ndarray:
    from PIL import Image

    return np.stack(
        [np.asarray(Image.open(Path(folder) / template.format(int(i) + start)).convert("RGB")) for i in indices]
    )


def bench_loader(
    annotation: str,
    *,
    root: str | None = None,
    format: str = "video",
    backends: list[str] = ("decord",),
    num_snippets: int = 4,
    num_frames: int = 8,
    frame_interval: int = 8,
    size: int = 224,
    videos: int = 16,
    rounds: int = 5,
    frame_template: str = "img_{:05d}.jpg",
    frame_start: int = 1,
    progress=None,
) -> dict:
    """The record of ``dsa-harness data bench`` (see the module docstring); ``progress(text)`` per round."""
    if videos < 1 or rounds < 1:
        raise ConfigError(f"--videos {videos}, --rounds {rounds}: both must be >= 1")
    root = root or str(Path(annotation).resolve().parent)
    records = read_annotations(annotation, format, root)[:videos]
    sampler = SnippetSampler(num_snippets, num_frames, frame_interval, "train")
    kinds = ["frames"] if format == "frames" else list(backends)
    if format != "frames":
        check_backends(kinds)
    results = {}
    for kind in kinds:
        dataset = VideoDataset(
            None,
            root,
            sampler,
            transform=train_transform(size),
            format=format,
            video_backend="pyav" if kind == "frames" else kind,
            records=records,
            frame_template=frame_template,
            frame_start=frame_start,
        )
        lengths = [r.num_frames if format == "frames" else len(open_video(r.path, backend=kind)) for r in records]
        items = [(r.path, dataset.sample_indices(i, n).ravel()) for i, (r, n) in enumerate(zip(records, lengths))]

        def raw(kind=kind, items=items):
            for path, idx in items:
                if kind == "frames":
                    _raw_frames(path, idx, frame_template, frame_start)
                else:
                    _raw_decode(kind, path, idx)

        def harness(dataset=dataset):
            for i in range(len(dataset)):
                dataset[i]

        results[kind] = _paired_rounds(raw, harness, len(records), rounds, kind, progress)
    return {
        "task": "data_bench",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "annotation": str(annotation),
        "format": format,
        "videos": len(records),
        "rounds": rounds,
        "sampling": {"snippets": num_snippets, "frames": num_frames, "interval": frame_interval, "size": size},
        "results": results,
        **describe_environment("cpu"),
    }


def _paired_rounds(raw, harness, videos: int, rounds: int, kind: str, progress) -> dict:
    """Time ``raw`` and ``harness`` (each one pass over the videos) in alternating order, after one warm-up."""
    raw()  # warm-up: file cache, decoder libraries
    harness()
    times = {"raw": [], "harness": []}
    for r in range(rounds):
        for name in ("raw", "harness") if r % 2 == 0 else ("harness", "raw"):
            t0 = time.perf_counter()
            (raw if name == "raw" else harness)()
            times[name].append(time.perf_counter() - t0)
        if progress:
            progress(f"{kind}: round {r + 1}/{rounds}")
    ratio = paired_ratio(times["raw"], times["harness"])  # raw s / harness s = harness videos/s over raw's
    return {
        "raw_videos_per_s": videos / statistics.median(times["raw"]),
        "harness_videos_per_s": videos / statistics.median(times["harness"]),
        "harness_over_raw": ratio["ratio"],
        "ci_low": ratio["ci_low"],
        "ci_high": ratio["ci_high"],
        "seconds": times,
    }


def format_bench(record: dict) -> str:
    """The terminal lines of a record: one per backend."""
    from harness.numfmt import format_interval

    lines = [
        f"{record['videos']} videos x {record['rounds']} rounds, U={record['sampling']['snippets']} x "
        f"T={record['sampling']['frames']} (interval {record['sampling']['interval']}), crop "
        f"{record['sampling']['size']}; videos/s of one process (median over rounds):"
    ]
    for kind, r in record["results"].items():
        ratio = format_interval(r["harness_over_raw"], r["ci_low"], r["ci_high"], 2)
        lines.append(
            f"  {kind:10s} raw {r['raw_videos_per_s']:7.2f}   harness {r['harness_videos_per_s']:7.2f}   "
            f"harness / raw {ratio} (95% interval over rounds)"
        )
    return "\n".join(lines)
