"""The frames path against the video path: training samples/s of one loader process reading the same Kinetics-like
clips as videos (decord, or ``--backend``) and as JPEG frame folders (``data prepare --extract-frames``), in
interleaved rounds, as a ratio with its interval.

Clips: 340x256, 300 frames at 30 fps, H.264 crf 23, keyframe every 2 s (``loader_throughput.kinetics_like_video``),
generated once under ``--cache`` and extracted once (short side 256, i.e. kept; JPEG quality 95) by
``harness.data.extract.extract_frames``. Each sample is what a training loader worker makes (``VideoDataset[i]``:
read the frames the paper's sampling picks, U=4 x T=8 at interval 8, random-resized crop 224, flip). Every round
reads all clips once per format (order alternating); ``frames / video`` = the median over rounds of the per-round
ratio of samples/s, with its bootstrap 95% interval (``harness.measure.latency.paired_ratio``). Target (issue 23):
>= 3x.

    .venv/bin/python benchmarks/frames_vs_video.py [--rounds 9]   # -> results/benchmarks/frames_vs_video.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loader_throughput import add_clip_options, clip_records, interleaved_rounds, write_record  # noqa: E402

from harness.data import SnippetSampler, VideoDataset, train_transform  # noqa: E402
from harness.data.annotations import read_annotations  # noqa: E402
from harness.data.extract import extract_frames  # noqa: E402
from harness.measure.latency import paired_ratio  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_clip_options(ap, rounds=9, out="results/benchmarks/frames_vs_video.json")
    ap.add_argument("--backend", default="decord", help="video backend (default decord)")
    args = ap.parse_args(argv)
    records = clip_records(args.cache, args.videos)
    cache = Path(args.cache)
    summary = extract_frames({"train": records}, cache, cache / "_frames", short_side=256, quality=95, progress=False)
    frames = read_annotations(summary["data"]["train"], "frames", summary["data"]["root"])
    sampler = SnippetSampler(4, 8, 8, "train")
    datasets = {
        "video": VideoDataset(None, None, sampler, train_transform(224), records=records, video_backend=args.backend),
        "frames": VideoDataset(None, None, sampler, train_transform(224), records=frames, format="frames"),
    }

    def read_all(ds):
        def job(r):
            ds.set_epoch(r)
            for i in range(len(ds)):
                ds[i]

        return job

    seconds = interleaved_rounds({kind: read_all(ds) for kind, ds in datasets.items()}, args.rounds)
    ratio = paired_ratio(seconds["video"], seconds["frames"])  # video time / frames time = frames' speed-up
    sps = {k: len(records) / sorted(v)[len(v) // 2] for k, v in seconds.items()}
    print(
        f"video ({args.backend}) {sps['video']:.2f}, frames {sps['frames']:.2f} samples/s (one process); "
        f"frames / video {ratio['ratio']:.2f} [{ratio['ci_low']:.2f}, {ratio['ci_high']:.2f}]"
    )
    write_record(
        args.out,
        "frames_vs_video",
        frames="JPEG q95, short side 256",
        sampling="train, U=4 x T=8, interval 8, random-resized crop 224 + flip",
        backend=args.backend,
        videos=len(records),
        rounds=args.rounds,
        samples_per_s=sps,
        frames_over_video=ratio,
        seconds=seconds,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
