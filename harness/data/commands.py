"""``dsa-harness data check | prepare | synth`` (and ``bench``, from harness/measure/commands.py)."""

from __future__ import annotations

import json

from harness.data.annotations import FORMATS
from harness.data.backends import VIDEO_BACKENDS
from harness.data.prepare import DATASETS
from harness.errors import ConfigError, UsageError
from harness.helpfmt import HelpFormatter


def _add_check(sub) -> None:
    p = sub.add_parser(
        "check",
        help="scan an annotated dataset for unreadable or too-short videos",
        description=(
            "Open every video of an annotation file the way training reads it (the video backend for video "
            "files: torchcodec where it loads, else decord, and PyAV for a file that one cannot read; Pillow "
            "for raw-frame folders), decode its "
            "first, middle and last frame in parallel, and write a report of unreadable (missing, zero-byte, "
            "truncated, undecodable) and too-short "
            "videos as JSON plus a Markdown summary. Exit status 1 when any video is unreadable, "
            "0 otherwise (too-short videos are listed but still usable: the sampler clamps indices)."
        ),
        formatter_class=HelpFormatter,
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
    _add_decoder_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_check)


def _add_decoder_options(p) -> None:
    """``data check --backend`` and ``--decoders``."""
    p.add_argument(
        "--backend",
        choices=VIDEO_BACKENDS,
        default="auto",
        help="video decoder, as data.video_backend: auto = torchcodec where it loads, else decord; PyAV for a "
        "file that one cannot read "
        "(listed with the cause); decord; pyav; torchcodec; torchcodec-cuda (default: auto)",
    )
    p.add_argument(
        "--decoders",
        type=int,
        metavar="N",
        default=None,
        help="instead of the scan: decode the same 16 frames of N random videos with every installed decoder "
        "(decord, pyav, torchcodec, ...) and print the largest difference per video; exit status 1 when "
        "they differ (default: off)",
    )


def _compare_decoders(args, root: str) -> int:
    from harness.data.annotations import read_annotations
    from harness.data.backends import installed_backends
    from harness.data.check import compare_decoders, format_decoder_comparison

    if args.decoders < 1:
        raise UsageError(f"--decoders must be >= 1, not {args.decoders}")
    if args.format == "frames":
        raise UsageError("--decoders compares video decoders: not for --format frames (JPEG folders)")
    backends = installed_backends()  # decord first: the reference
    if len(backends) < 2:
        raise UsageError(f"--decoders needs two installed decoders; installed: {', '.join(backends) or 'none'}")
    records = read_annotations(args.annotation, args.format, root, class_index=args.classes)
    report = compare_decoders(records, backends, videos=args.decoders)
    print(format_decoder_comparison(report))
    return 0 if report["identical"] else 1


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
    if args.decoders is not None:
        return _compare_decoders(args, root)
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
        from harness.data.backends import auto_decoder

        first = auto_decoder() if report.get("backend") == "auto" else report.get("backend")
        print(f"{report['num_fallback']} read with PyAV ({first} cannot read them):")
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
            "parameters is reused unless --force; a set of other parameters (named), or lists this command did "
            "not make, are refused unless --force, which removes them first. Train with flip off (it swaps the "
            "motion labels) and clips inside a quarter, e.g. T=4 frames at interval 2 for 64-frame videos, also "
            "with 2 test groups (see meta.json 'recommended')."
        ),
        formatter_class=HelpFormatter,
        epilog=(
            "examples:\n"
            "  dsa-harness data synth --out data/synth                  # 400 videos, 112x112, 64 frames\n"
            "  dsa-harness data synth --out data/synth64 --size 64      # smaller frames for CPU training\n"
            "  dsa-harness data synth --out data/synth --study          # the study's set (make reproduce)\n"
            "  dsa-harness data synth --out data/s8 --num-classes 8 --videos 800   # four motion directions\n"
            "  dsa-harness data synth --out data/cued --task cued_order --benchmark  # the benchmark's set\n"
            "  dsa-harness data synth --out data/same --task same --distance 3 --size 32  # 3 apart"
        ),
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--videos", type=int, default=400, help="number of videos, a multiple of --num-classes (default 400)"
    )
    p.add_argument(
        "--num-classes",
        type=int,
        default=None,
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
        default=None,
        help="how A and B differ: shape only (random colours, default) or shape + fixed colours",
    )
    _add_second_family(p)
    p.add_argument("--workers", type=int, default=None, help="encoding processes (default: all CPU cores)")
    p.add_argument(
        "--force",
        action="store_true",
        help="regenerate even if DIR holds the same set; replace another set or list files there (removed first)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_synth)


def _add_second_family(p) -> None:
    """The options of `data synth --task same | cued_order` (harness/data/synthetic_cued.py)."""
    far = p.add_argument_group(
        "second task family (--task same | cued_order: harness/data/synthetic_cued.py)",
        "8 segments; two objects far apart (same: are they alike?) or an adjacent pair A, B and a lone copy of "
        "one of them far away (cued_order: does the object seen twice come first?). A static kernel over "
        "snippets sees the two parts together only within its reach; DSA's kernel is made from the whole video.",
    )
    far.add_argument(
        "--task",
        choices=("order", "same", "cued_order"),
        default="order",
        help="order: the first family (above); same / cued_order: the second (default order)",
    )
    far.add_argument(
        "--distance",
        type=int,
        default=5,
        metavar="SEGMENTS",
        help="fewest segments between the two parts: same 1..7, cued_order 1..5 (default 5)",
    )
    far.add_argument(
        "--look-alike",
        type=float,
        default=0.0,
        metavar="A",
        help="how far A's and B's colours are drawn to their mean, 0 <= A < 1 (default 0: red and blue)",
    )
    far.add_argument(
        "--cue-bias",
        type=float,
        default=0.0,
        metavar="B",
        help="cued_order: share (1 + B) / 2 of each class with A as the cue, 0 <= B < 1: the pair's order alone is "
        "then right that often (default 0: no part alone says anything)",
    )
    far.add_argument(
        "--benchmark",
        action="store_true",
        help="the embedded benchmark's set (800 videos, 32x32, 64 frames, val 0.2, test 0.2, cue bias 0.75); "
        "overrides --videos --size --frames --val-fraction --test-fraction --cue-bias",
    )


def _cued_params(args) -> dict:
    """The :class:`~harness.data.synthetic_cued.CuedConfig` fields of ``data synth --task same|cued_order``."""
    from harness.data.synthetic_cued import BENCHMARK_SET

    if args.study or args.num_classes is not None or args.identity is not None:
        named = (("--study", args.study or None), ("--num-classes", args.num_classes), ("--identity", args.identity))
        given = [o for o, v in named if v is not None]
        raise UsageError(f"{', '.join(given)}: options of --task order only (--task {args.task} has 2 classes)")
    params = {
        "num_videos": args.videos,
        "size": args.size,
        "frames": args.frames,
        "seed": args.seed,
        "val_fraction": args.val_fraction,
        "test_fraction": args.test_fraction,
        "rule": args.task,
        "distance": args.distance,
        "look_alike": args.look_alike,
        "cue_bias": args.cue_bias,
    }
    if args.benchmark:
        params.update(BENCHMARK_SET, seed=args.seed)
    return params


def _run_synth(args) -> int:
    from harness.data.synthetic import STUDY_SET, generate_synthetic
    from harness.data.synthetic_cued import generate_cued

    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, not {args.workers}")
    run = {"workers": args.workers, "force": args.force, "progress": not args.quiet}
    if args.task != "order":
        s = generate_cued(args.out, **_cued_params(args), **run)
        return _print_synth(s)
    untouched = {
        "--distance": args.distance == 5,
        "--look-alike": args.look_alike == 0.0,
        "--cue-bias": args.cue_bias == 0.0,
        "--benchmark": not args.benchmark,
    }
    if not all(untouched.values()):
        given = ", ".join(o for o, same in untouched.items() if not same)
        raise UsageError(f"{given}: options of --task same / cued_order, not of --task order")
    params = {
        "num_videos": args.videos,
        "num_classes": 4 if args.num_classes is None else args.num_classes,
        "size": args.size,
        "frames": args.frames,
        "seed": args.seed,
        "val_fraction": args.val_fraction,
        "test_fraction": args.test_fraction,
        "identity": args.identity or "shape",
    }
    if args.study:
        params.update(STUDY_SET, seed=args.seed)
    return _print_synth(generate_synthetic(args.out, **params, **run))


def _print_synth(s: dict) -> int:
    verb = "reused existing" if s["reused"] else f"wrote in {s['seconds']:.1f} s"
    print(
        f"{verb}: {s['num_videos']} videos ({s['num_train']} train, {s['num_val']} val, {s['num_test']} test), "
        f"{s['num_classes']} classes, {s['bytes'] / 1e6:.1f} MB in {s['out_dir']}"
    )
    print(json.dumps({k: s[k] for k in ("train", "val", "test", "classes_file", "meta_file")}, indent=2))
    return 0


def _add_prepare(sub) -> None:
    p = sub.add_parser(
        "prepare",
        help="turn a downloaded Kinetics-400, Mini-Kinetics-200 or Something-Something V1 into our lists",
        description=(
            "Read a dataset in its published layout and write OUT/train.txt and OUT/val.txt (video lists "
            "'PATH LABEL', or raw-frame lists 'FOLDER NUM_FRAMES LABEL' for sthv1, relative to the video folder), "
            "OUT/classes.json (class names, index = position) and OUT/prepare.json (the summary). "
            "kinetics400: the official CSVs train.csv and validate.csv (or val.csv) and the clips "
            "SOURCE/<split>/<label>/<youtube_id>_<start:06d>_<end:06d>.mp4 or SOURCE/<split>/<youtube_id>_...mp4 "
            "(split folders train and val or validate). minikinetics200: the published id lists "
            "train_ytid_list.txt and val_ytid_list.txt (one YOUTUBE_ID, or LABEL/YOUTUBE_ID, per line; labels "
            "from the Kinetics-400 CSVs) over a Kinetics-400 folder. sthv1: frame folders SOURCE/<id>/00001.jpg ..., "
            "something-something-v1-labels.csv (one class per line) and something-something-v1-train.csv / "
            "-validation.csv ('id;label name'). Annotation files are looked for in SOURCE, SOURCE/annotations, "
            "the parent of SOURCE, OUT and OUT/annotations, or where --annotations says. Missing videos and "
            "unreadable ones (zero-byte files, empty frame folders; with --check every video is decoded as "
            "'data check' does) are counted, listed in the summary and left out of the lists (--keep-missing "
            "writes them too). The defaults (OUT data/<dataset>; SOURCE OUT/videos, sthv1 OUT/frames, "
            "minikinetics200 the Kinetics-400 folder OUT/../kinetics400/videos) are the paths the paper grids read. "
            "lists: our own video lists (--train, --val; 'PATH LABEL'). --extract-frames then decodes every listed "
            "video once into JPEG frame folders OUT/frames/... (the mmaction2 layout the frames format reads) and "
            "writes the raw-frame lists OUT/frames_train.txt and OUT/frames_val.txt; resumable (re-run the same "
            "command), in --workers processes, with a disk estimate first."
        ),
        formatter_class=HelpFormatter,
        epilog=(
            "examples:\n"
            "  dsa-harness data prepare kinetics400                       # data/kinetics400/videos -> lists\n"
            "  dsa-harness data prepare kinetics400 --source /datasets/k400 --annotations /datasets/k400/annotations\n"
            "  dsa-harness data prepare minikinetics200 --source data/kinetics400/videos --annotations lists/mini200\n"
            "  dsa-harness data prepare sthv1 --source /datasets/20bn-something-something-v1 --check"
        ),
    )
    p.add_argument("dataset", choices=DATASETS, help="the published layout to read")
    p.add_argument(
        "--source",
        default=None,
        metavar="DIR",
        help="video folder (sthv1: frame folder), the lists' root (default OUT/videos; sthv1 OUT/frames; "
        "minikinetics200 OUT/../kinetics400/videos)",
    )
    p.add_argument("--out", default=None, metavar="DIR", help="where the lists go (default data/<dataset>)")
    p.add_argument(
        "--annotations",
        default=None,
        metavar="DIR",
        help="folder of the published annotation files (default: searched)",
    )
    p.add_argument(
        "--train",
        default=None,
        metavar="FILE",
        help="the train split file (Kinetics CSV, Mini-Kinetics list, sthv1 CSV)",
    )
    p.add_argument("--val", default=None, metavar="FILE", help="the validation split file (as --train)")
    p.add_argument("--labels", default=None, metavar="FILE", help="sthv1: something-something-v1-labels.csv")
    p.add_argument(
        "--kinetics-csv",
        nargs=2,
        default=None,
        metavar=("TRAIN", "VAL"),
        help="minikinetics200: the Kinetics-400 train and validate CSVs (labels of the ids)",
    )
    p.add_argument(
        "--frame-template", default="{:05d}.jpg", help="sthv1: file name of frame i (default {:05d}.jpg, from 1)"
    )
    p.add_argument("--frame-start", type=int, default=1, help="sthv1: number of the first frame file (default 1)")
    p.add_argument(
        "--keep-missing",
        action="store_true",
        help="write missing and unreadable videos into the lists too (train with data.on_error=skip)",
    )
    p.add_argument(
        "--check", action="store_true", help="decode the first, middle and last frame of every video found (slower)"
    )
    _add_prepare_decoding(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_prepare)


def _add_prepare_decoding(p) -> None:
    """``data prepare``'s options that decode videos: ``--check`` and ``--extract-frames``."""
    p.add_argument(
        "--backend",
        choices=VIDEO_BACKENDS,
        default="auto",
        help="--check, --extract-frames: video decoder (default: auto)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="--check, --extract-frames: parallel processes (default: all CPU cores)",
    )
    p.add_argument(
        "--extract-frames",
        action="store_true",
        help="also write every listed video as JPEG frames OUT/frames/<path>/img_00001.jpg ... and the raw-frame "
        "lists OUT/frames_train.txt, OUT/frames_val.txt (resumable; a folder of other settings is refused)",
    )
    p.add_argument(
        "--short-side",
        type=int,
        default=256,
        metavar="PX",
        help="--extract-frames: resize frames to this short side, never enlarging (default 256)",
    )
    p.add_argument("--quality", type=int, default=95, help="--extract-frames: JPEG quality 1..100 (default 95)")
    p.add_argument(
        "--transcode",
        action="store_true",
        help="also re-encode every listed video (H.264, --short-side, constant frame rate, a keyframe every --gop "
        "frames) into OUT/transcoded/<path>.mp4 with the lists OUT/transcoded_train.txt, OUT/transcoded_val.txt "
        "(resumable)",
    )
    p.add_argument("--gop", type=int, default=32, help="--transcode: frames between keyframes (default 32)")
    p.add_argument(
        "--fps", type=float, default=None, help="--transcode: constant frame rate (default: each video's average)"
    )
    p.add_argument("--crf", type=int, default=23, help="--transcode: H.264 quality 0..51, lower is better (default 23)")


def _check_prepare_options(args) -> None:
    """Refuse ``data prepare`` options that cannot go together (``UsageError``, one line)."""
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, not {args.workers}")
    if args.frame_start < 0:
        raise UsageError(f"--frame-start must be >= 0, not {args.frame_start}")
    if (args.extract_frames or args.transcode) and args.dataset == "sthv1":
        raise UsageError("--extract-frames, --transcode: sthv1 is already frames (they convert video lists)")
    if args.extract_frames and args.transcode:
        raise UsageError("--extract-frames and --transcode: one at a time (each into its own --out)")


def _run_prepare(args) -> int:
    from pathlib import Path

    from harness.data.prepare import default_out, default_source, prepare_dataset

    _check_prepare_options(args)
    if args.dataset == "sthv1":
        from harness.data.video import check_frame_template

        try:
            check_frame_template(args.frame_template, args.frame_start)
        except ConfigError as e:
            raise UsageError(f"--frame-template: {e}") from None
    if args.labels and args.dataset != "sthv1":
        raise UsageError("--labels is for sthv1 (Kinetics class names come from the CSVs)")
    if args.kinetics_csv and args.dataset != "minikinetics200":
        raise UsageError("--kinetics-csv is for minikinetics200 (kinetics400 reads its CSVs with --train/--val)")
    files = {"train": args.train, "val": args.val, "labels": args.labels}
    if args.kinetics_csv:
        files["kinetics_train"], files["kinetics_val"] = args.kinetics_csv
    s = prepare_dataset(
        args.dataset,
        source=args.source,
        out=args.out,
        annotations=args.annotations,
        files={k: v for k, v in files.items() if v},
        frame_template=args.frame_template,
        frame_start=args.frame_start,
        keep_missing=args.keep_missing,
        check=args.check,
        backend=args.backend,
        workers=args.workers,
        progress=not args.quiet,
    )
    print(f"{s['dataset']}: {s['num_classes']} classes -> {s['classes_file']}")
    for split, c in s["splits"].items():
        print(
            f"  {split}: {c['listed']} in {c['annotation']}, {c['written']} written to {c['list']}, "
            f"{c['missing']} missing, {c['unreadable']} unreadable"
        )
    kept = "written to the lists too (--keep-missing)" if s["keep_missing"] else "not in the lists"
    for key, title in (("missing", "missing"), ("unreadable", "unreadable")):
        entries = [e for split in s["splits"] for e in s[key][split]]
        if not entries:
            continue
        print(f"{len(entries)} {title}, {kept}:")
        for e in entries[:10]:
            what = e["error"] if key == "unreadable" else f"{e['label']}: not found: {e['expected']}"
            print(f"  {e['annotation']}:{e['line']}: {e['id']} ({what})")
        if len(entries) > 10:
            print(f"  ... {len(entries) - 10} more (see the summary)")
    for w in s["warnings"][:10]:
        print(f"warning: {w}")
    if len(s["warnings"]) > 10:
        print(f"warning: ... {len(s['warnings']) - 10} more (see the summary)")
    print(f"summary: {s['summary_file']}")
    if args.extract_frames or args.transcode:
        return _extract(args, s)
    if args.dataset == "lists":
        return 0
    out = default_out(args.dataset)
    data = s["data"]
    defaults = {
        "train": out / "train.txt",
        "val": out / "val.txt",
        "test": out / "val.txt",
        "root": default_source(args.dataset, out),
    }
    differ = [f"--set data.{k}={data[k]}" for k, v in defaults.items() if Path(data[k]).resolve() != v.resolve()]
    if differ:
        print(f"the paper grids read data/{args.dataset}/...; train on these lists with: " + " ".join(differ))
    else:
        print(f"the paper grids' data paths (data/{args.dataset}/...) hold these lists")
    return 0


def _extract(args, prepared: dict) -> int:
    """``data prepare ... --extract-frames`` / ``--transcode``: the lists just written, as JPEG frame folders
    and frame lists, or as re-encoded videos and their lists."""
    from pathlib import Path

    from harness.data.annotations import read_annotations
    from harness.data.extract import extract_frames, transcode_videos

    source, out = Path(prepared["source"]), Path(prepared["out"])
    splits = {split: read_annotations(c["list"], "video", source) for split, c in prepared["splits"].items()}
    common = {
        "backend": args.backend,
        "workers": args.workers,
        "progress": not args.quiet,
        "short_side": args.short_side,
    }
    common["lists"] = {split: c["list"] for split, c in prepared["splits"].items()}
    if args.transcode:
        s = transcode_videos(splits, source, out, gop=args.gop, fps=args.fps, crf=args.crf, **common)
    else:
        s = extract_frames(splits, source, out, quality=args.quality, **common)
    for split, c in s["splits"].items():
        print(
            f"  {split}: {c['extracted']} {'re-encoded' if args.transcode else 'extracted'}, {c['kept']} already "
            f"there, {c['unreadable']} unreadable "
            f"-> {c['out_list']}"
        )
    for e in s["unreadable"][:10]:
        print(f"  unreadable (left out): {e['path']} ({e['line']}): {e['error']}")
    data, what = s["data"], "re-encoded videos" if args.transcode else "frames"
    print(
        f"{what}: {s['bytes'] / 1e6:.1f} MB written (estimated {s['estimate_bytes'] / 1e6:.1f} MB); "
        f"summary: {out / ('transcode.json' if args.transcode else 'extract.json')}"
    )
    print(
        f"train on the {what} with: --set data.format={data['format']} --set data.root={data['root']} "
        f"--set data.train={data['train']} --set data.val={data['val']} --set data.test={data['test']}"
    )
    return 0


def register_commands(subparsers) -> None:
    """Add ``data`` with sub-commands ``check``, ``prepare`` and ``synth``."""
    p = subparsers.add_parser(
        "data",
        help="video data: check a dataset, prepare a downloaded one, generate the synthetic long-range set",
        description=(
            "Video data tools: 'check' scans a dataset for bad videos; 'prepare' turns a downloaded Kinetics-400, "
            "Mini-Kinetics-200 or Something-Something V1 into our lists; 'synth' writes the synthetic set; 'bench' "
            "times the data path (videos/s of one loader process) beside the raw decoder."
        ),
    )
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    _add_check(sub)
    _add_prepare(sub)
    _add_synth(sub)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
