"""Loader throughput: the training data pipeline, built as training builds it, against raw decord.

For every sample of an epoch the dataset's sampler chooses U*T frame indices (train mode,
spec sampling: U=4 snippets, T=8 frames, interval 8). We time

- raw:      ``decord.VideoReader(path, num_threads=1).get_batch(indices)`` in a loop (one process),
- pipeline: the training set and loader of a one-process CPU run, made by the engine's own calls:
            ``build_data`` (decode + random-resized crop 224 + flip, as ``data.*`` defaults say; no
            normalisation, which the training step does) and ``build_train_loader`` (the one loader,
            ``harness.data.build_loader``: shuffled, batch 4, persistent workers) with
            ``data.num_workers`` = 0, 1 and 2,

on the very same frame indices (the dataset's ``sample_indices`` for the timed epoch), and report
clips/s and the ratio pipeline / raw. Each measurement is one full epoch after a warm-up epoch;
the median of ``--repeats`` runs is reported.

Videos: ``--data LIST --root DIR`` (a video list), or Kinetics-like clips generated once
(340x256, 300 frames at 30 fps, H.264 crf 23, 2 s GOP, moving texture) under ``--cache``.

    .venv/bin/python benchmarks/loader_throughput.py            # writes results/benchmarks/loader_throughput.json
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.config import DataConfig, EvalConfig, TrainConfig
from harness.data import read_annotations, set_epoch
from harness.engine.distributed import DistributedContext
from harness.engine.train import build_data, build_train_loader
from harness.results.rundir import atomic_write_json

SNIPPETS, FRAMES, INTERVAL = 4, 8, 8


def kinetics_like_video(path: Path, seed: int, frames: int = 300, width: int = 340, height: int = 256) -> None:
    """A textured, moving 30 fps clip encoded like a typical download (crf 23, keyframe every 2 s)."""
    import av

    rng = np.random.default_rng(seed)
    big = rng.integers(0, 256, size=(height // 4 + 40, width // 4 + 80, 3), dtype=np.uint8)
    big = np.kron(big, np.ones((4, 4, 1), np.uint8))  # blocky texture
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w") as c:
        s = c.add_stream("libx264", rate=Fraction(30))
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"crf": "23", "preset": "veryfast", "x264-params": "keyint=60"}
        for f in range(frames):
            dx, dy = int(f * 0.8) % 300, int(f * 0.3) % 150
            img = np.ascontiguousarray(big[dy : dy + height, dx : dx + width])
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    os.replace(tmp, path)


def prepare(cache: Path, count: int) -> tuple[Path, Path]:
    cache.mkdir(parents=True, exist_ok=True)
    lines = []
    for k in range(count):
        path = cache / f"k{k:02d}.mp4"
        if not path.exists():
            print(f"generating {path}", flush=True)
            kinetics_like_video(path, seed=k)
        lines.append(f"{path.name} {k % 4}")
    ann = cache / "list.txt"
    ann.write_text("\n".join(lines) + "\n")
    return ann, cache


def add_clip_options(ap: argparse.ArgumentParser, *, rounds: int, out: str) -> None:
    """The options of the benchmarks that read these clips: ``--cache``, ``--videos``, ``--rounds``, ``--out``."""
    ap.add_argument("--cache", default="results/benchmarks/_loader_videos", help="where the generated clips live")
    ap.add_argument("--videos", type=int, default=8, help="clips (default 8)")
    ap.add_argument("--rounds", type=int, default=rounds, help=f"interleaved rounds (default {rounds})")
    ap.add_argument("--out", default=out, help=f"where to record the figures (default {out})")


def clip_records(cache: str | Path, count: int) -> list:
    """The first ``count`` Kinetics-like clips under ``cache`` (generated once) as ``VideoRecord``s, labels k % 4."""
    ann, root = prepare(Path(cache), count)
    return read_annotations(ann, "video", root)


def interleaved_rounds(jobs: dict, rounds: int) -> dict[str, list[float]]:
    """Seconds of every job (``name -> fn(round)``) in each of ``rounds`` rounds, the jobs' order rotating
    between rounds (so that a machine's drift hits all alike); one progress line per round."""
    names = list(jobs)
    seconds: dict = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            jobs[name](r)
            seconds[name].append(time.perf_counter() - t0)
        print(f"round {r + 1}/{rounds}: " + ", ".join(f"{n} {seconds[n][-1]:.2f}s" for n in names), flush=True)
    return seconds


def write_record(out: str, benchmark: str, **fields) -> None:
    """Record a clip benchmark's figures at ``out`` (with the time, the clips and the machine) and say where."""
    from datetime import datetime, timezone

    from harness.measure.environment import describe_environment

    record = {
        "benchmark": benchmark,
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "clips": "340x256, 300 frames, 30 fps, H.264 crf 23, GOP 60",
        **fields,
        "hardware": describe_environment(),
    }
    atomic_write_json(Path(out), record)
    print(f"recorded in {out}")


def time_raw(items: list[tuple[str, np.ndarray]]) -> float:
    import decord

    t0 = time.perf_counter()
    for path, idx in items:
        vr = decord.VideoReader(path, num_threads=1)
        frames = vr.get_batch(idx.reshape(-1).tolist()).asnumpy()
        assert frames.shape[0] == idx.size
        del vr
    return len(items) / (time.perf_counter() - t0)


def time_loader(loader, epoch: int) -> float:
    set_epoch(loader, epoch)
    count = 0
    t0 = time.perf_counter()
    for x, _, _ in loader:
        count += x.shape[0]
    return count / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="video list (PATH LABEL); default: generated Kinetics-like clips")
    ap.add_argument("--root", help="root of --data paths")
    ap.add_argument("--cache", default="results/benchmarks/_loader_videos", help="where generated clips live")
    ap.add_argument("--videos", type=int, default=8, help="generated clips (default 8)")
    ap.add_argument("--samples", type=int, default=48, help="samples per timed epoch (default 48)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="results/benchmarks/loader_throughput.json")
    args = ap.parse_args(argv)

    if args.data:
        ann, root = Path(args.data), args.root
    else:
        ann, root = prepare(Path(args.cache), args.videos)
    # the training list: --samples lines cycling over the videos (absolute paths: no root needed)
    base = read_annotations(ann, "video", root)
    train_list = Path(args.out).with_name("loader_throughput_train.txt")
    train_list.parent.mkdir(parents=True, exist_ok=True)
    train_list.write_text(
        "".join(
            f"{Path(base[i % len(base)].path).resolve()} {base[i % len(base)].label}\n" for i in range(args.samples)
        )
    )
    seed = 0
    dcfg = DataConfig(train=str(train_list), frame_interval=INTERVAL, size=args.size)
    tcfg = TrainConfig(batch_size=args.batch)
    ds = build_data(dcfg, EvalConfig(), SNIPPETS, FRAMES, seed).train  # the training set, as training builds it
    epoch = 1  # epoch 0 warms up
    ds.set_epoch(epoch)
    items = []
    for i, r in enumerate(ds.records):
        import decord

        n = len(decord.VideoReader(r.path))
        items.append((r.path, ds.sample_indices(i, n)))

    rows = []
    raw_runs = []
    time_raw(items[: max(4, len(items) // 4)])  # warm the file cache
    cpu, one_process = torch.device("cpu"), DistributedContext()
    loaders = {
        w: build_train_loader(ds, tcfg, replace(dcfg, num_workers=w), seed, one_process, cpu) for w in args.workers
    }
    results = {w: [] for w in args.workers}
    for rep in range(args.repeats):
        raw_runs.append(time_raw(items))
        for w, loader in loaders.items():
            time_loader(loader, 0)  # warm-up epoch (worker start)
            results[w].append(time_loader(loader, epoch))
        print(
            f"repeat {rep + 1}/{args.repeats}: raw {raw_runs[-1]:.1f} clips/s, "
            + ", ".join(f"{w} workers {results[w][-1]:.1f}" for w in args.workers),
            flush=True,
        )
    raw = statistics.median(raw_runs)
    for w in args.workers:
        clips = statistics.median(results[w])
        rows.append(
            {
                "workers": w,
                "pipeline_clips_s": round(clips, 2),
                "raw_decord_clips_s": round(raw, 2),
                "ratio": round(clips / raw, 3),
                "runs_clips_s": [round(v, 2) for v in results[w]],
            }
        )
    del loaders

    from tabulate import tabulate

    print(tabulate(rows, headers="keys", tablefmt="github"))
    record = {
        "benchmark": "loader_throughput",
        "what": "clips/s of the training set and loader as a one-process CPU run builds them (engine's "
        "build_data + build_train_loader = harness.data.build_loader, shuffled; decode + "
        "random-resized crop + flip, no normalisation) vs raw decord get_batch on the same indices",
        "sampling": {
            "num_snippets": SNIPPETS,
            "frames_per_snippet": FRAMES,
            "frame_interval": INTERVAL,
            "mode": "train",
        },
        "data_config": {k: v for k, v in asdict(dcfg).items() if k not in ("train", "num_workers")},
        "size": args.size,
        "batch": args.batch,
        "samples": args.samples,
        "repeats": args.repeats,
        "videos": str(ann),
        "raw_runs_clips_s": [round(v, 2) for v in raw_runs],
        "rows": rows,
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        },
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    atomic_write_json(args.out, record)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
