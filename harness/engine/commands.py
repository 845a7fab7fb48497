"""`dsa-harness train` and `dsa-harness eval`."""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path

from harness.models.commands import parse_override


def register_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train and test one variant (resumable)",
        description=(
            "Train VARIANT on an annotated video dataset, then test it with multi-view testing. The run folder "
            "(--out) receives config.json, metrics.jsonl, checkpoint.pt, log.txt and, last, final.json. "
            "Re-running the same command on the same folder resumes exactly from the checkpoint; SIGTERM or "
            "SIGUSR1 make the run checkpoint at the next step and exit with code 143 (resume by re-running). "
            "Defaults are the paper's Kinetics-400 recipe (spec section 5); pass smaller values for CPU work. "
            "Multi-GPU: launch with torchrun (gloo on CPU, nccl on CUDA)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=("example (CPU, the embedded synthetic set):\n"
                "  dsa-harness data synth --out data/synth --size 64\n"
                "  dsa-harness train tsm_r18_dsa --data data/synth/train.txt --val data/synth/val.txt \\\n"
                "      --test data/synth/val.txt -o width=16 -o num_frames=4 --frame-interval 2 --size 56 \\\n"
                "      --no-flip --epochs 6 --batch-size 8 --lr 0.02 --warmup-epochs 1 --crops 1 \\\n"
                "      --out results/runs/manual/tsm_dsa"),
    )
    p.add_argument("variant", help="model variant (see `dsa-harness list`)")
    p.add_argument("--data", required=True, help="training annotation file")
    p.add_argument("--val", help="validation annotation file (evaluated every epoch, one view)")
    p.add_argument("--test", help="test annotation file (multi-view, at the end)")
    p.add_argument("--root", help="folder the annotation paths are relative to (default: annotation's folder)")
    p.add_argument("--format", default="video", choices=("video", "frames", "kinetics_csv"))
    p.add_argument("--classes", help="class-index file (kinetics_csv)")
    p.add_argument("--out", required=True, help="run folder (created; resumed if it holds a checkpoint)")
    p.add_argument("-o", "--override", type=parse_override, action="append", default=[], metavar="KEY=VALUE",
                   help="model override, e.g. split_ratio=0.25, num_frames=4, width=16")
    g = p.add_argument_group("data")
    g.add_argument("--frame-interval", type=int, default=8)
    g.add_argument("--size", type=int, default=224, help="crop size")
    g.add_argument("--resize", type=int, help="short side before eval crops (default size*256/224)")
    g.add_argument("--no-flip", action="store_true", help="no horizontal flip (direction-sensitive labels)")
    g.add_argument("--workers", type=int, default=2)
    g.add_argument("--cache-decoded", action="store_true",
                   help="decode each video once per process and sample from memory (small datasets)")
    g.add_argument("--skip-corrupt", action="store_true", help="skip unreadable videos (counted, listed)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=100)
    g.add_argument("--batch-size", type=int, default=12, help="videos per process per step")
    g.add_argument("--lr", type=float, default=0.015, help="lr for --lr-batch videos, scaled linearly")
    g.add_argument("--lr-batch", type=int, default=12)
    g.add_argument("--weight-decay", type=float, default=1e-4)
    g.add_argument("--schedule", choices=("step", "cosine"), default="step")
    g.add_argument("--milestones", type=int, nargs="*", default=[50, 75, 90])
    g.add_argument("--warmup-epochs", type=float, default=10)
    g.add_argument("--clip-grad", type=float, default=40.0)
    g.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none")
    g.add_argument("--grad-accum", type=int, default=1)
    g.add_argument("--checkpoint-every", type=int, default=0, help="steps between mid-epoch checkpoints")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    g.add_argument("--threads", type=int)
    g.add_argument("--seed", type=int, default=0)
    g = p.add_argument_group("testing")
    g.add_argument("--test-groups", type=int, default=2, help="interleaved groups of U snippets")
    g.add_argument("--crops", type=int, choices=(1, 3), default=3)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_train)

    e = sub.add_parser("eval", help="(re-)evaluate a finished or checkpointed run with other views",
                       description="Evaluate the latest checkpoint of RUN_DIR on its test set (or --test) with "
                                   "the given views; prints and writes eval-<groups>x<crops>.json in the run.")
    e.add_argument("run_dir")
    e.add_argument("--test", help="annotation file (default: the run's test set)")
    e.add_argument("--test-groups", type=int)
    e.add_argument("--crops", type=int, choices=(1, 3))
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=_eval)


def config_from_args(args: argparse.Namespace) -> dict:
    return {
        "task": "train", "seed": args.seed,
        "model": {"variant": args.variant, **dict(args.override)},
        "data": {"train": args.data, "val": args.val, "test": args.test, "root": args.root, "format": args.format,
                 "classes": args.classes, "frame_interval": args.frame_interval, "size": args.size,
                 "resize": args.resize or round(args.size * 256 / 224), "flip": not args.no_flip,
                 "num_workers": args.workers, "cache_decoded": args.cache_decoded,
                 "on_error": "skip" if args.skip_corrupt else "raise"},
        "train": {"epochs": args.epochs, "batch_size": args.batch_size, "base_lr": args.lr,
                  "base_batch": args.lr_batch, "weight_decay": args.weight_decay, "schedule": args.schedule,
                  "milestones": args.milestones, "warmup_epochs": args.warmup_epochs,
                  "clip_grad_norm": args.clip_grad or None, "amp": args.amp, "grad_accum": args.grad_accum,
                  "checkpoint_every_steps": args.checkpoint_every, "device": args.device, "threads": args.threads},
        "eval": {"test_groups": args.test_groups, "crops": args.crops},
    }


def _train(args: argparse.Namespace) -> int:
    from harness.engine.train import STOP, TrainingInterrupted, train_and_evaluate

    for path in (args.data, args.val, args.test):
        if path and not Path(path).exists():
            raise FileNotFoundError(f"annotation file not found: {path}")

    def request_stop(signum, frame):
        STOP.set()

    for sig in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, request_stop)
    try:
        final = train_and_evaluate(config_from_args(args), args.out, echo=not args.quiet)
    except TrainingInterrupted as e:
        print(f"interrupted: {e}")
        return 143
    test = final.get("test")
    if test:
        print(f"test top-1 {test['top1']:.2f}%  top-5 {test['top5']:.2f}%  ({args.out}/final.json)")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from harness.engine.evaluate_run import evaluate_run

    result = evaluate_run(args.run_dir, test=args.test, test_groups=args.test_groups, crops=args.crops)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"top-1 {result['top1']:.2f}%  top-5 {result['top5']:.2f}%  mean class {result['mean_class_acc']:.2f}%"
              f"  ({result['views']} views, {result['num_videos']} videos)")
    return 0
