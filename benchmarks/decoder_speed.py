"""Decoders side by side: videos/s of each installed CPU decoder (decord, torchcodec, PyAV) on the same
Kinetics-like clips at the same frame indices, in interleaved rounds, as a ratio to decord with its interval.

Clips: 340x256, 300 frames at 30 fps, H.264 crf 23, keyframe every 2 s (``loader_throughput.kinetics_like_video``),
generated once under ``--cache``. Indices: the paper's training sampling (U=4 snippets x T=8 frames, interval
8), one draw per clip. Each round times every backend once over all clips (open + decode the wanted frames, one
thread: ``harness.measure.loader._raw_decode``), the backends' order rotating between rounds. ``speed-up vs
decord`` = the median over rounds of decord's time / the backend's time (same round), with its bootstrap 95%
interval (``harness.measure.latency.paired_ratio``). Also checks that every backend returns the frames decord
returns (bit for bit). This is what ``auto`` (decord, PyAV per file) was chosen by; see harness/data/backends.py.

    .venv/bin/python benchmarks/decoder_speed.py [--videos 8] [--rounds 7]   # -> results/benchmarks/decoder_speed.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loader_throughput import add_clip_options, clip_records, interleaved_rounds, write_record  # noqa: E402

from harness.data.backends import installed_backends  # noqa: E402
from harness.data.sampling import SnippetSampler  # noqa: E402
from harness.measure.latency import paired_ratio  # noqa: E402
from harness.measure.loader import _raw_decode  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_clip_options(ap, rounds=7, out="results/benchmarks/decoder_speed.json")
    args = ap.parse_args(argv)
    paths = [r.path for r in clip_records(args.cache, args.videos)]
    backends = [b for b in ("decord", "torchcodec", "pyav") if b in installed_backends()]
    sampler = SnippetSampler(4, 8, 8, "train")
    items = [(p, sampler(300, np.random.default_rng(k)).ravel()) for k, p in enumerate(paths)]
    reference = [_raw_decode("decord", p, idx) for p, idx in items]
    identical = {
        b: all(np.array_equal(_raw_decode(b, p, idx), ref) for (p, idx), ref in zip(items, reference)) for b in backends
    }

    def decode_all(b):
        def job(r):
            for p, idx in items:
                _raw_decode(b, p, idx)

        return job

    seconds = interleaved_rounds({b: decode_all(b) for b in backends}, args.rounds)
    results = {}
    for b in backends:
        ratio = paired_ratio(seconds["decord"], seconds[b])  # decord's time / b's time = b's speed-up
        vps = len(items) / float(np.median(seconds[b]))
        results[b] = {
            "videos_per_s": vps,
            "speedup_vs_decord": ratio,
            "identical_to_decord": identical[b],
            "seconds": seconds[b],
        }
        print(
            f"{b:>10}: {vps:6.2f} videos/s (one process), speed-up vs decord {ratio['ratio']:.2f} "
            f"[{ratio['ci_low']:.2f}, {ratio['ci_high']:.2f}], frames identical to decord: {identical[b]}"
        )
    write_record(
        args.out,
        "decoder_speed",
        sampling="train, U=4 x T=8, interval 8",
        videos=len(items),
        rounds=args.rounds,
        results=results,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
