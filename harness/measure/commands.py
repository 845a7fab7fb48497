"""`dsa-harness profile VARIANT|PATTERN`: GFLOPs, params, latency."""

from __future__ import annotations

import argparse
import json

from tabulate import tabulate
from tqdm import tqdm

from harness.config import parse_set
from harness.helpfmt import HelpFormatter
from harness.numfmt import format_interval, format_sig


def _batches(text: str) -> list[int]:
    import argparse as _argparse

    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise _argparse.ArgumentTypeError(f"{text!r}: write batch sizes as e.g. 1 or 1,8,32") from None
    if not values:
        raise _argparse.ArgumentTypeError(f"{text!r}: write batch sizes as e.g. 1 or 1,8,32")
    return values


def register_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profile",
        help="GFLOPs, params, paired latency, training-step time and memory of variants",
        description=(
            "Profile model variants with no data. FLOPs and params with fvcore (1 multiply-add = 1 FLOP, every op\n"
            "counted). A view is one forward pass over U snippets x T frames of one SIZE x SIZE crop; per-video\n"
            "cost = per view x VIEWS.\n\n"
            "Timing is paired: every named variant and its baseline (--baseline auto: the same model without its\n"
            "aggregator) are timed in the same interleaved rounds (order alternating), so the ratio to the\n"
            "baseline (median of per-round ratios, bootstrap 95% interval) survives a noisy machine. --train\n"
            "times full training steps too (forward, backward, SGD step). Peak memory of a forward pass (and of\n"
            "a training step) is measured: exactly with max_memory_allocated on CUDA, from torch.profiler's\n"
            "memory events on CPU. The settings (dtype, TF32, cudnn.benchmark, channels_last, compile mode,\n"
            "versions, threads, batch) are printed and kept in --json records."
        ),
        formatter_class=HelpFormatter,
        epilog=(
            "examples:\n"
            "  dsa-harness profile i3d_r50_dsa\n"
            "  dsa-harness profile 'tsm_r50*' --no-latency --views 6\n"
            "  dsa-harness profile tsm_r50 --snippets 1 --frames 8 --no-latency   # the TSM paper's 8-frame model\n"
            "  dsa-harness profile i3d_r50_dsa --train --batch 1,8 --rounds 5\n"
            "  dsa-harness profile i3d_r50_dsa --device cuda:0 --dtype bf16 --compile-mode reduce-overhead\n"
            "  dsa-harness profile i3d_r50_dsa -o split_ratio=0.25 -o position=res_3 --no-latency --json"
        ),
    )
    _add_input_options(p)
    _add_timing_options(p)
    p.add_argument(
        "-o",
        "--override",
        type=parse_set,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model override, e.g. split_ratio=0.25, stage_masks=all, aggregator=nonlocal",
    )
    p.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    p.set_defaults(func=_profile)


def _add_input_options(p: argparse.ArgumentParser) -> None:
    """What is profiled: the variants and the input shape."""
    p.add_argument("variant", help="a variant name or a wildcard pattern (see `dsa-harness list`)")
    p.add_argument("--snippets", "-U", type=int, metavar="U", help="snippets per view U (default: the variant's)")
    p.add_argument("--frames", "-T", type=int, metavar="T", help="frames per snippet T (default: the variant's)")
    p.add_argument("--size", type=int, default=224, help="crop size in pixels (default: %(default)s)")
    p.add_argument(
        "--batch",
        type=_batches,
        default=[1],
        metavar="B[,B...]",
        help="videos per timed step; a list times each batch in turn (default: 1)",
    )
    p.add_argument("--views", type=int, default=1, help="test views per video, clips x crops (default: %(default)s)")
    p.add_argument("--num-classes", type=int, default=400, help="number of classes (default: %(default)s)")


def _add_timing_options(p: argparse.ArgumentParser) -> None:
    """Where and how it is timed: device, threads, what is measured, rounds, baseline, numerics."""
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--threads", type=int, help="intra-op threads while timing (default: torch's)")
    p.add_argument(
        "--no-latency", action="store_true", help="no forward-pass timing (without --train: FLOPs and params only)"
    )
    p.add_argument("--train", action="store_true", help="also time full training steps")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurements")
    p.add_argument("--rounds", type=int, default=10, help="interleaved rounds of forward passes (default: %(default)s)")
    p.add_argument("--train-rounds", type=int, help="interleaved rounds of training steps (default: --rounds)")
    p.add_argument(
        "--baseline",
        default="auto",
        help="auto (the model without its aggregator), none, or a variant to time beside each (default: %(default)s)",
    )
    p.add_argument(
        "--dtype", choices=("fp32", "bf16", "fp16"), default="fp32", help="autocast dtype (default: %(default)s)"
    )
    p.add_argument(
        "--tf32",
        choices=("on", "off"),
        help="TF32 for matmul and cuDNN (default: torch's: matmul off, cuDNN on)",
    )
    p.add_argument("--cudnn-benchmark", action="store_true", help="set torch.backends.cudnn.benchmark")
    p.add_argument("--channels-last", action="store_true", help="time with channels_last memory format")
    p.add_argument(
        "--compile-mode",
        choices=("none", "default", "reduce-overhead", "max-autotune"),
        default="none",
        help="torch.compile mode; reduce-overhead replays CUDA graphs (default: %(default)s)",
    )


def check_profile_flags(args: argparse.Namespace) -> None:
    """Refuse flag values ``profile`` cannot use, naming the flag (``UsageError``)."""
    from harness.errors import UsageError

    for flag, value, low in (
        ("--snippets", args.snippets, 1),
        ("--frames", args.frames, 1),
        ("--size", args.size, 16),
        ("--views", args.views, 1),
        ("--num-classes", args.num_classes, 1),
        ("--threads", args.threads, 1),
        ("--rounds", args.rounds, 1),
        ("--train-rounds", args.train_rounds, 1),
        *(("--batch", b, 1) for b in args.batch),
    ):
        if value is not None and value < low:
            raise UsageError(f"{flag} {value}: must be >= {low}")
    if args.baseline not in ("auto", "none"):
        from harness.models.registry import list_variants

        if args.baseline not in list_variants():
            raise UsageError(
                f"--baseline {args.baseline!r}: not a variant; use auto, none or a name from `dsa-harness list`"
            )
    device = args.device
    if not (device in ("cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit())):
        raise UsageError(f"--device {device!r}: must be cpu, cuda or cuda:N")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError(f"--device {device}: no CUDA device is visible; use --device cpu")
        if ":" in device and int(device[5:]) >= torch.cuda.device_count():
            raise UsageError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) visible")


def _profile(args: argparse.Namespace) -> int:
    import sys

    from harness.measure.profile import profile_variants
    from harness.measure.runtime import Settings
    from harness.models import resolve_config
    from harness.models.registry import UnknownVariantError, list_variants

    check_profile_flags(args)
    names = list_variants(args.variant) if any(c in args.variant for c in "*?[") else [args.variant]
    if not names:
        raise UnknownVariantError(args.variant)
    overrides = dict(args.override)
    if args.snippets is not None:
        overrides["num_snippets"] = args.snippets
    if args.frames is not None:
        overrides["num_frames"] = args.frames
    overrides.setdefault("num_classes", args.num_classes)
    configs = [resolve_config(n, **overrides) for n in names]
    timed = not args.no_latency or args.train
    records = []
    for batch in args.batch:
        settings = Settings(
            device=args.device,
            dtype=args.dtype,
            tf32=None if args.tf32 is None else args.tf32 == "on",
            cudnn_benchmark=args.cudnn_benchmark,
            channels_last=args.channels_last,
            compile_mode=args.compile_mode,
            threads=args.threads,
            batch=batch,
        )
        bar = tqdm(desc=f"profile batch {batch}", total=None, leave=False, disable=not timed or args.json)

        def progress(text: str, bar=bar) -> None:
            bar.set_postfix_str(text)
            bar.update(0)

        records += profile_variants(
            configs,
            size=args.size,
            views=args.views,
            settings=settings,
            latency=not args.no_latency,
            rounds=args.rounds,
            baseline=args.baseline,
            memory=not args.no_memory,
            train=args.train,
            train_rounds=args.train_rounds,
            progress=progress,
        )
        bar.close()
    if args.json:
        print(json.dumps(records if len(records) > 1 else records[0], indent=2))
        return 0
    print(format_profile_table(records))
    print(f"\n{format_settings(records[0].get('settings'))}", file=sys.stdout)
    unsupported = {r["variant"]: r["unsupported_ops"] for r in records if r["unsupported_ops"]}
    if unsupported:
        print(f"\nops without a FLOP handle (not counted): {unsupported}")
    return 0


def format_settings(settings: dict | None) -> str:
    """One line: where and how a profile was timed (``Settings.describe()``)."""
    if not settings:
        return "settings: not recorded"
    s = settings
    parts = [
        f"{s['device']}: {s['device_name']}",
        f"{s['threads']} threads",
        s["dtype"] + (" autocast" if s["autocast"] else ""),
    ]
    if s["device"].startswith("cuda"):
        parts += [
            f"TF32 matmul {'on' if s['tf32_matmul'] else 'off'}, cuDNN {'on' if s['tf32_cudnn'] else 'off'}",
            f"cudnn.benchmark {'on' if s['cudnn_benchmark'] else 'off'}",
        ]
    parts += [
        f"channels_last {'on' if s['channels_last'] else 'off'}",
        f"compile {s['compile_mode']}",
        f"torch {s['torch']}" + (f", CUDA {s['cuda']}, cuDNN {s['cudnn']}" if s.get("cuda") else ""),
    ]
    return "settings: " + ", ".join(parts)


def _interval(r: dict, median: str, low: str, high: str, digits: int = 4, decimals: int | None = None) -> str | None:
    """``median [low, high]`` of a record (None when not measured)."""
    if r.get(median) is None:
        return None
    return format_interval(r[median], r.get(low), r.get(high), digits, decimals=decimals)


def _sig(x: float | None, digits: int = 4) -> str | None:
    return None if x is None else format_sig(x, digits)


def format_profile_table(records: list[dict], tablefmt: str = "simple") -> str:
    """The records as a table: cost (GFLOPs/view x views), params, then what was measured: latency and
    training step (median [95% interval], ms), ratio to the baseline [95% interval], peak memory (GB).
    Columns nobody measured are left out."""
    columns: list[tuple[str, object]] = [
        ("variant", lambda r: r["variant"]),
        ("U x T", lambda r: f"{r['snippets']}x{r['frames']}"),
        ("size", lambda r: r["size"]),
        ("batch", lambda r: r.get("batch")),
        ("GFLOPs/view x views", lambda r: f"{_sig(r['gflops_per_view'])} x {r['views']}"),
        ("params (M)", lambda r: _sig(r["params_m"])),
        ("aggregator params", lambda r: r["aggregator_params"]),
        ("latency ms [95% CI]", lambda r: _interval(r, "latency_ms", "latency_ci_low_ms", "latency_ci_high_ms")),
        ("clips/s", lambda r: _sig(r.get("throughput_clips_s"))),
        ("baseline", lambda r: r.get("baseline") if r.get("latency_ratio") or r.get("train_ratio") else None),
        (
            "latency ratio [95% CI]",
            lambda r: _interval(r, "latency_ratio", "latency_ratio_ci_low", "latency_ratio_ci_high", decimals=2),
        ),
        (
            "train step ms [95% CI]",
            lambda r: _interval(r, "train_step_ms", "train_step_ci_low_ms", "train_step_ci_high_ms"),
        ),
        (
            "train ratio [95% CI]",
            lambda r: _interval(r, "train_ratio", "train_ratio_ci_low", "train_ratio_ci_high", decimals=2),
        ),
        ("peak GB forward", lambda r: _sig(r.get("infer_peak_mem_gb"), 3)),
        (
            "peak GB train step",
            lambda r: _sig(r.get("train_peak_mem_gb"), 3),
        ),
    ]
    cells = [[f(r) for _, f in columns] for r in records]
    keep = [i for i in range(len(columns)) if any(row[i] is not None for row in cells)]
    rows = [["-" if row[i] is None else row[i] for i in keep] for row in cells]
    return tabulate(rows, headers=[columns[i][0] for i in keep], tablefmt=tablefmt)


def add_data_bench(data_parser: argparse.ArgumentParser) -> None:
    """``data bench``: attached to the ``data`` command (harness/data/commands.py) by the CLI, since timing
    the data path uses this area's tools (paired rounds, environment records)."""
    sub = next(a for a in data_parser._actions if isinstance(a, argparse._SubParsersAction))
    p = sub.add_parser(
        "bench",
        help="videos/s of one loader process for a dataset's videos, beside the raw decoder",
        description=(
            "Time the data path of training on a list's own videos: the harness's dataset (open, decode the frames\n"
            "the sampler picks, random-resized crop and flip) against the backend alone decoding the same frames,\n"
            "in interleaved rounds; prints videos/s of one process for each and their ratio with its bootstrap 95%\n"
            "interval, and writes the record (JSON) to --out. A loader with W workers delivers up to W times it."
        ),
        formatter_class=HelpFormatter,
        epilog=(
            "examples:\n"
            "  dsa-harness data bench data/synth/train.txt --backend decord --backend pyav\n"
            "  dsa-harness data bench k400/frames_val.txt --format frames --frame-template 'img_{:05d}.jpg'"
        ),
    )
    p.add_argument("annotation", metavar="LIST", help="video list or raw-frame list")
    p.add_argument(
        "--root", metavar="DIR", default=None, help="folder the list's paths are relative to (default: its own)"
    )
    p.add_argument("--format", choices=("video", "frames"), default="video", help="list layout (default: video)")
    p.add_argument(
        "--backend",
        action="append",
        metavar="NAME",
        default=None,
        help="video backend to time, repeatable: decord | pyav | torchcodec | torchcodec-cuda (default: decord)",
    )
    p.add_argument("--videos", type=int, metavar="N", default=16, help="videos read per pass (default 16)")
    p.add_argument("--rounds", type=int, metavar="N", default=5, help="interleaved rounds (default 5)")
    p.add_argument("--snippets", type=int, metavar="U", default=4, help="snippets per video (default 4)")
    p.add_argument("--frames", type=int, metavar="T", default=8, help="frames per snippet (default 8)")
    p.add_argument("--interval", type=int, metavar="FRAMES", default=8, help="frame interval (default 8)")
    p.add_argument("--size", type=int, metavar="PIXELS", default=224, help="training crop (default 224)")
    p.add_argument(
        "--frame-template",
        default="img_{:05d}.jpg",
        metavar="TEMPLATE",
        help="raw frames: file name of frame i (default img_{:05d}.jpg)",
    )
    p.add_argument(
        "--frame-start", type=int, metavar="N", default=1, help="raw frames: first frame's number (default 1)"
    )
    p.add_argument(
        "--out",
        metavar="FILE",
        default="results/benchmarks/data_bench.json",
        help="where to write the record (default results/benchmarks/data_bench.json)",
    )
    p.set_defaults(func=_data_bench)


def _data_bench(args: argparse.Namespace) -> int:
    from harness.errors import UsageError
    from harness.measure.loader import bench_loader, format_bench
    from harness.results.rundir import atomic_write_json

    for name in ("videos", "rounds", "snippets", "frames", "interval", "size"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} {getattr(args, name)}: must be >= 1")
    record = bench_loader(
        args.annotation,
        root=args.root,
        format=args.format,
        backends=args.backend or ["decord"],
        num_snippets=args.snippets,
        num_frames=args.frames,
        frame_interval=args.interval,
        size=args.size,
        videos=args.videos,
        rounds=args.rounds,
        frame_template=args.frame_template,
        frame_start=args.frame_start,
        progress=lambda text: print(text, flush=True),
    )
    print(format_bench(record))
    atomic_write_json(args.out, record)
    print(f"record: {args.out}")
    return 0
