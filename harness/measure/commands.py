"""`dsa-harness profile VARIANT|PATTERN`: GFLOPs, params, latency."""

from __future__ import annotations

import argparse
import json

from tabulate import tabulate
from tqdm import tqdm

from harness.config import parse_set
from harness.numfmt import format_sig


def register_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profile",
        help="GFLOPs, params and latency of variants",
        description=(
            "Profile model variants with no data: FLOPs and params with fvcore (1 multiply-add = 1 FLOP, "
            "every op counted), latency with torch.utils.benchmark (warm-up, median, IQR). A view is one "
            "forward pass over U snippets x T frames of one SIZE x SIZE crop; per-video cost = per view x VIEWS."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  dsa-harness profile i3d_r50_dsa\n"
            "  dsa-harness profile 'tsm_r50*' --no-latency --views 6\n"
            "  dsa-harness profile tsm_r50 --snippets 1 --frames 8        # the TSM paper's 8-frame model\n"
            "  dsa-harness profile i3d_r50_dsa -o split_ratio=0.25 -o position=res_3 --json"
        ),
    )
    p.add_argument("variant", help="a variant name or a wildcard pattern (see `dsa-harness list`)")
    p.add_argument("--snippets", "-U", type=int, help="snippets per view U (default: the variant's)")
    p.add_argument("--frames", "-T", type=int, help="frames per snippet T (default: the variant's)")
    p.add_argument("--size", type=int, default=224, help="crop size in pixels (default 224)")
    p.add_argument("--batch", type=int, default=1, help="videos per forward pass for latency (default 1)")
    p.add_argument("--views", type=int, default=1, help="test views per video, clips x crops (default 1)")
    p.add_argument("--num-classes", type=int, default=400, help="number of classes (default 400)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--threads", type=int, help="intra-op threads for latency (default: torch's)")
    p.add_argument("--no-latency", action="store_true", help="FLOPs and params only")
    p.add_argument("--min-time", type=float, default=1.0, help="seconds of timed runs per variant (default 1)")
    p.add_argument("--channels-last", action="store_true", help="time with channels_last memory format")
    p.add_argument("--compile", action="store_true", help="time the torch.compile'd model")
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


def check_profile_flags(args: argparse.Namespace) -> None:
    """Refuse flag values ``profile`` cannot use, naming the flag (``UsageError``)."""
    from harness.errors import UsageError

    for flag, value, low in (
        ("--snippets", args.snippets, 1),
        ("--frames", args.frames, 1),
        ("--size", args.size, 16),
        ("--batch", args.batch, 1),
        ("--views", args.views, 1),
        ("--num-classes", args.num_classes, 1),
        ("--threads", args.threads, 1),
    ):
        if value is not None and value < low:
            raise UsageError(f"{flag} {value}: must be >= {low}")
    if not args.min_time > 0:
        raise UsageError(f"--min-time {args.min_time}: must be > 0 seconds")
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
    from harness.measure.profile import profile_model
    from harness.models.registry import UnknownVariantError, list_variants

    check_profile_flags(args)
    names = list_variants(args.variant) if any(c in args.variant for c in "*?[") else [args.variant]
    if not names:
        raise UnknownVariantError(args.variant)
    records = []
    for name in tqdm(names, desc="profile", disable=len(names) < 2, leave=False):
        records.append(
            profile_model(
                name,
                dict(args.override),
                snippets=args.snippets,
                frames=args.frames,
                size=args.size,
                batch=args.batch,
                views=args.views,
                device=args.device,
                num_classes=args.num_classes,
                latency=not args.no_latency,
                threads=args.threads,
                min_run_time=args.min_time,
                channels_last=args.channels_last,
                compile=args.compile,
            )
        )
    if args.json:
        print(json.dumps(records if len(records) > 1 else records[0], indent=2))
        return 0
    print(format_profile_table(records))
    unsupported = {r["variant"]: r["unsupported_ops"] for r in records if r["unsupported_ops"]}
    if unsupported:
        print(f"\nops without a FLOP handle (not counted): {unsupported}")
    return 0


def format_profile_table(records: list[dict], tablefmt: str = "simple") -> str:
    rows = []
    for r in records:
        lat = "-" if r["latency_ms"] is None else f"{r['latency_ms']:.1f} ± {r['latency_iqr_ms']:.1f}"
        thr = "-" if r["throughput_clips_s"] is None else f"{r['throughput_clips_s']:.1f}"
        rows.append(
            (
                r["variant"],
                f"{r['snippets']}x{r['frames']}",
                r["size"],
                format_sig(r["gflops_per_view"]),
                r["views"],
                format_sig(r["gflops_per_video"]),
                format_sig(r["params_m"]),
                r["aggregator_params"],
                lat,
                thr,
            )
        )
    headers = (
        "variant",
        "U x T",
        "size",
        "GFLOPs/view",
        "views",
        "GFLOPs/video",
        "params (M)",
        "aggregator params",
        f"latency ms (batch {records[0]['batch']})",
        "clips/s",
    )
    return tabulate(rows, headers=headers, tablefmt=tablefmt)
