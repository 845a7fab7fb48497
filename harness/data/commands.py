"""``dsa-harness data check | synth``."""

from __future__ import annotations

import argparse
import json

from harness.data.annotations import FORMATS
from harness.errors import ConfigError, UsageError

VIDEO_BACKENDS = ("auto", "decord", "pyav")  # harness.data.video.VIDEO_BACKENDS (that module imports torch)


def _add_check(sub) -> None:
    p = sub.add_parser(
        "check",
        help="scan an annotated dataset for unreadable or too-short videos",
        description=(
            "Open every video of an annotation file the way training reads it (the video backend for video "
            "files: decord, PyAV for a file decord cannot read; Pillow for raw-frame folders), decode its "
            "first, middle and last frame in parallel, and write a report of unreadable (missing, zero-byte, "
            "truncated, undecodable) and too-short "
            "videos as JSON plus a Markdown summary. Exit status 1 when any video is unreadable, "
            "0 otherwise (too-short videos are listed but still usable: the sampler clamps indices)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  dsa-harness data check data/synth/train.txt --root data/synth\n"
            "  dsa-harness data check kinetics400/val.csv --format kinetics_csv --root k400/val \\\n"
            "      --classes k400/classes.txt --report results/k400_val_check.json\n"
            "  dsa-harness data check sthv1/val.txt --format frames --root sthv1/frames "
            "--frame-template '{:05d}.jpg'"
        ),
    )
    p.add_argument("annotation", help="annotation file (video list, raw-frame list or Kinetics CSV)")
    p.add_argument(
        "--root", default=None, help="folder the annotation's paths are relative to (default: the annotation's folder)"
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="video",
        help="annotation layout: 'video' = 'PATH LABEL' lines, 'frames' = 'FOLDER NUM_FRAMES LABEL' "
        "lines, 'kinetics_csv' = label,youtube_id,time_start,time_end,split (default: video)",
    )
    p.add_argument(
        "--min-frames",
        type=int,
        default=57,
        help="videos with fewer frames are reported as too short (default 57: one clip of 8 frames "
        "at interval 8, the paper's sampling)",
    )
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all CPU cores)")
    p.add_argument(
        "--frame-template",
        default="img_{:05d}.jpg",
        help="raw frames: file name of frame i, formatted with i + --frame-start (default img_{:05d}.jpg)",
    )
    p.add_argument("--frame-start", type=int, default=1, help="raw frames: number of the first frame file (default 1)")
    p.add_argument(
        "--classes",
        default=None,
        metavar="FILE",
        help="Kinetics CSV: class-index file (one name per line, or JSON); default: sorted CSV labels",
    )
    p.add_argument(
        "--report",
        default=None,
        help="where to write the JSON report; the Markdown summary goes next to it with .md "
        "(default: ANNOTATION.check.json next to the annotation file)",
    )
    p.add_argument(
        "--deep",
        action="store_true",
        help="decode every frame, not just the first, middle and last (slower; finds files damaged inside)",
    )
    p.add_argument(
        "--backend",
        choices=VIDEO_BACKENDS,
        default="auto",
        help="video decoder, as data.video_backend: auto = decord, PyAV for a file decord cannot read "
        "(listed with the cause); decord; pyav (default: auto)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_check)


def _run_check(args) -> int:
    from pathlib import Path

    from harness.data.check import check_dataset, default_report_path, write_report

    if args.min_frames < 1:
        raise UsageError(f"--min-frames must be >= 1, not {args.min_frames}")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, not {args.workers}")
    if args.frame_start < 0:
        raise UsageError(f"--frame-start must be >= 0, not {args.frame_start}")
    if args.format == "frames":
        from harness.data.video import check_frame_template

        try:
            check_frame_template(args.frame_template, args.frame_start)
        except ConfigError as e:
            raise UsageError(f"--frame-template: {e}") from None
    root = args.root if args.root is not None else str(Path(args.annotation).resolve().parent)
    report = check_dataset(
        args.annotation,
        root,
        args.format,
        min_frames=args.min_frames,
        workers=args.workers,
        frame_template=args.frame_template,
        frame_start=args.frame_start,
        class_index=args.classes,
        progress=not args.quiet,
        deep=args.deep,
        backend=args.backend,
    )
    target = args.report or default_report_path(args.annotation)
    try:
        json_path, md_path = write_report(report, target)
        where = f"report: {json_path} and {md_path}"
    except OSError as e:  # a read-only dataset folder: the scan is not lost, it is printed
        from harness.data.check import report_markdown

        print(report_markdown(report))
        where = f"report not written ({e.strerror}: {e.filename}); printed above; write it elsewhere with --report"
    print(
        f"{report['num_videos']} videos: {report['num_ok']} readable, {report['num_unreadable']} unreadable, "
        f"{report['num_too_short']} shorter than {report['min_frames']} frames"
    )
    for item in report["unreadable"][:10]:
        print(f"  unreadable ({item['reason']}): {item['path']} (line {item['line']}): {item['error']}")
    if report["num_unreadable"] > 10:
        print(f"  ... {report['num_unreadable'] - 10} more")
    if report["num_fallback"]:
        print(f"{report['num_fallback']} read with PyAV (decord cannot read them):")
        for item in report["fallback"][:10]:
            print(f"  {item['path']} (line {item['line']}): {item['cause']}")
        if report["num_fallback"] > 10:
            print(f"  ... {report['num_fallback'] - 10} more")
    print(where)
    return 1 if report["num_unreadable"] else 0


def _add_synth(sub) -> None:
    p = sub.add_parser(
        "synth",
        help="write the embedded long-range synthetic video set (real H.264 mp4 files)",
        description=(
            "Generate the synthetic set whose labels need long-range temporal modelling: "
            "label = (order of two events: a square A and a disc B, each visible during one whole quarter "
            "of the video, in different quarters) x (direction the visible object moves in). A model that "
            "averages independent snippet predictions over U=4 segment-aligned snippets is exactly at "
            "chance (50%) on the order factor (best class accuracy 50%, chance 1/K); one that exchanges "
            "information across snippets can reach 100%. Writes DIR/videos/*.mp4, DIR/train.txt, "
            "DIR/val.txt (video lists relative to DIR), DIR/classes.json and DIR/meta.json. "
            "Deterministic for a seed; classes exactly balanced. An existing complete set with the same "
            "parameters is reused unless --force. Train with flip off (it swaps the motion labels) and "
            "clips inside a quarter, e.g. T=4 frames at interval 2 for 64-frame videos, also with 2 test "
            "groups (see meta.json 'recommended')."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  dsa-harness data synth --out data/synth                  # 400 videos, 112x112, 64 frames\n"
            "  dsa-harness data synth --out data/synth64 --size 64      # smaller frames for CPU training\n"
            "  dsa-harness data synth --out data/synth --study          # the set `make reproduce` trains on\n"
            "  dsa-harness data synth --out data/s8 --num-classes 8 --videos 800   # four motion directions"
        ),
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--videos", type=int, default=400, help="number of videos, a multiple of --num-classes (default 400)"
    )
    p.add_argument(
        "--num-classes",
        type=int,
        default=4,
        help="2 orders x motion types: 2, 4 (left/right), 6 or 8 (+ up/down) (default 4)",
    )
    p.add_argument("--size", type=int, default=112, help="frame side in pixels, even, >= 32 (default 112)")
    p.add_argument("--frames", type=int, default=64, help="frames per video, a multiple of 4 (default 64)")
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same files (default 0)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of each class in val.txt (default 0.2)")
    p.add_argument(
        "--test-fraction", type=float, default=0.0, help="share of each class in test.txt (default 0: no test split)"
    )
    p.add_argument(
        "--study",
        action="store_true",
        help="the CPU study's set (600 videos, 32x32, 64 frames, val 0.2, test 0.2); "
        "overrides --videos --num-classes --size --frames --val-fraction --test-fraction",
    )
    p.add_argument(
        "--identity",
        choices=("shape", "colour"),
        default="shape",
        help="how A and B differ: shape only (random colours, default) or shape + fixed colours",
    )
    p.add_argument("--workers", type=int, default=None, help="encoding processes (default: all CPU cores)")
    p.add_argument("--force", action="store_true", help="regenerate even if DIR holds the same set")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_synth)


def _run_synth(args) -> int:
    from harness.data.synthetic import STUDY_SET, generate_synthetic

    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, not {args.workers}")
    params = {
        "num_videos": args.videos,
        "num_classes": args.num_classes,
        "size": args.size,
        "frames": args.frames,
        "seed": args.seed,
        "val_fraction": args.val_fraction,
        "test_fraction": args.test_fraction,
        "identity": args.identity,
    }
    if args.study:
        params.update(STUDY_SET, seed=args.seed)
    s = generate_synthetic(args.out, **params, workers=args.workers, force=args.force, progress=not args.quiet)
    verb = "reused existing" if s["reused"] else f"wrote in {s['seconds']:.1f} s"
    print(
        f"{verb}: {s['num_videos']} videos ({s['num_train']} train, {s['num_val']} val, {s['num_test']} test), "
        f"{s['num_classes']} classes, {s['bytes'] / 1e6:.1f} MB in {s['out_dir']}"
    )
    print(json.dumps({k: s[k] for k in ("train", "val", "test", "classes_file", "meta_file")}, indent=2))
    return 0


def register_commands(subparsers) -> None:
    """Add ``data`` with sub-commands ``check`` and ``synth``."""
    p = subparsers.add_parser(
        "data",
        help="video data: check a dataset, generate the synthetic long-range set",
        description="Video data tools: 'check' scans a dataset for bad videos; 'synth' writes the synthetic set.",
    )
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    _add_check(sub)
    _add_synth(sub)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
