"""`dsa-harness train` and `dsa-harness eval`.

Every field of the run config (harness/config/) is reachable: ``--recipe FILE`` starts from a recipe,
the common flags below set one field each (their defaults are the config's), ``--set section.key=VALUE``
sets any field, ``-o KEY=VALUE`` is short for ``--set model.KEY=VALUE``. Later wins: defaults < recipe <
flags < -o < --set.
"""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path

from harness.config import AMP_MODES, add_set_argument, fields_help, parse_set, section_fields
from harness.helpfmt import HelpFormatter

TRAIN_FLAGS: tuple[tuple[str, str, dict], ...] = (
    # flag, dotted key of the run config, argparse options
    ("--data", "data.train", {"metavar": "FILE"}),
    ("--val", "data.val", {"metavar": "FILE"}),
    ("--test", "data.test", {"metavar": "FILE"}),
    ("--root", "data.root", {"metavar": "DIR"}),
    ("--format", "data.format", {"choices": ("video", "frames", "kinetics_csv")}),
    ("--classes", "data.classes", {"metavar": "FILE"}),
    ("--frame-interval", "data.frame_interval", {"type": int, "metavar": "FRAMES"}),
    ("--size", "data.size", {"type": int, "metavar": "PX"}),
    ("--resize", "data.resize", {"type": int, "metavar": "PX"}),
    ("--workers", "data.num_workers", {"type": int, "metavar": "N"}),
    ("--epochs", "train.epochs", {"type": int, "metavar": "N"}),
    ("--batch-size", "train.batch_size", {"type": int, "metavar": "VIDEOS"}),
    ("--lr", "train.base_lr", {"type": float, "metavar": "LR"}),
    ("--lr-batch", "train.base_batch", {"type": int, "metavar": "VIDEOS"}),
    ("--weight-decay", "train.weight_decay", {"type": float, "metavar": "WD"}),
    ("--schedule", "train.schedule", {"choices": ("step", "cosine")}),
    ("--milestones", "train.milestones", {"type": int, "nargs": "*", "metavar": "EPOCH"}),
    ("--warmup-epochs", "train.warmup_epochs", {"type": float, "metavar": "EPOCHS"}),
    ("--clip-grad", "train.clip_grad_norm", {"type": float, "metavar": "NORM"}),
    ("--amp", "train.amp", {"choices": AMP_MODES}),
    ("--grad-accum", "train.grad_accum", {"type": int, "metavar": "STEPS"}),
    ("--checkpoint-every", "train.checkpoint_every_steps", {"type": int, "metavar": "STEPS"}),
    ("--device", "train.device", {"choices": ("auto", "cpu", "cuda")}),
    ("--threads", "train.threads", {"type": int, "metavar": "N"}),
    ("--seed", "seed", {"type": int, "metavar": "N"}),
    ("--test-groups", "eval.test_groups", {"type": int, "metavar": "CLIPS"}),
    ("--crops", "eval.crops", {"type": int, "choices": (1, 3)}),
    ("--test-size", "eval.size", {"type": int, "metavar": "PX"}),
    ("--test-resize", "eval.resize", {"type": int, "metavar": "PX"}),
)
"""The common flags of ``train``, each a shorthand for ``--set KEY=VALUE`` (tested against the config)."""
SWITCHES: tuple[tuple[str, str, object, str], ...] = (
    ("--no-flip", "data.flip", False, "no horizontal flip (direction-sensitive labels)"),
    ("--cache-decoded", "data.cache_decoded", True, "decode each video once per process (small datasets)"),
    (
        "--skip-corrupt",
        "data.on_error",
        "skip",
        "skip unreadable videos, counted and listed (training: replaced; val/test: left out, never replaced)",
    ),
)
EVAL_FLAGS = tuple(
    f
    for f in TRAIN_FLAGS
    if f[0] in ("--test", "--test-groups", "--crops", "--test-size", "--test-resize", "--workers")
)


def default_of(key: str) -> object:
    """The config's default for a dotted key (None for the model's: the variant decides)."""
    if key == "seed":
        return 0
    section, name = key.split(".")
    return None if section == "model" else section_fields(section)[name][0]


def add_config_flags(p: argparse.ArgumentParser, flags=TRAIN_FLAGS, switches=SWITCHES) -> None:
    """The common flags (help from the config field, default shown), ``--set`` and ``-o``."""
    g = p.add_argument_group("run config (defaults: harness/config/; see --set below)")
    for flag, key, opts in flags:
        section, _, name = key.partition(".")
        text = (
            section_fields(section)[name][2] if name else "random seed (data order, init, augmentation), 0 to 2**32-1"
        )
        default = default_of(key)
        shown = json.dumps(list(default) if isinstance(default, tuple) else default)
        g.add_argument(flag, dest=_dest(key), default=None, help=f"{text} [{key}; default {shown}]", **opts)
    for flag, key, value, text in switches:
        g.add_argument(
            flag,
            dest=_dest(key),
            action="store_const",
            const=value,
            default=None,
            help=f"{text} [{key}={json.dumps(value)}]",
        )
    add_set_argument(
        g,
        "set any field of the run config, repeatable (e.g. --set train.momentum=0.95); "
        "fields and defaults are listed at the end of this help",
    )
    g.add_argument(
        "-o",
        "--override",
        dest="model_sets",
        type=parse_set,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model field, short for --set model.KEY=VALUE (e.g. -o split_ratio=0.25)",
    )


def _dest(key: str) -> str:
    return "cfg__" + key.replace(".", "__")


def flag_values(args: argparse.Namespace) -> list[tuple[str, object]]:
    """(dotted key, value) of every common flag given, then -o, then --set, in that order."""
    out = []
    for name, value in vars(args).items():
        if name.startswith("cfg__") and value is not None:
            key = name[5:].replace("__", ".")
            if key == "train.clip_grad_norm" and value == 0:
                value = None  # --clip-grad 0: no clipping
            out.append((key, list(value) if isinstance(value, tuple) else value))
    out += [(f"model.{k}", v) for k, v in args.model_sets]
    out += list(args.sets)
    return out


def _set_help(sections: tuple[str, ...]) -> str:
    return "fields of --set KEY=VALUE (default; model defaults come from the variant):\n" + fields_help(sections)


def register_commands(sub: argparse._SubParsersAction) -> None:
    _add_train_parser(sub)
    _add_eval_parser(sub)


def _add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train and test one variant (resumable)",
        description=(
            "Train VARIANT on an annotated video dataset, then test it with multi-view testing. The run folder "
            "(--out) receives config.json (the fully resolved config, with its run id), metrics.jsonl, "
            "checkpoint.pt, log.txt and, last, final.json. Re-running the same command resumes exactly from "
            "the checkpoint, or says the run is done; a folder of another run is refused, naming what differs. "
            "SIGTERM or SIGUSR1 make the run checkpoint at the next step and exit with code 143. Defaults are "
            "the paper's Kinetics-400 recipe (spec section 5); --recipe starts from another one. Multi-GPU: "
            "launch with torchrun (gloo on CPU, nccl on CUDA)."
        ),
        formatter_class=HelpFormatter,
        epilog=(
            "example (CPU, the synthetic study's recipe; ~1-2 min on one core, prints test top-1 100.00%):\n"
            "  dsa-harness data synth --study --out data/synth\n"
            "  dsa-harness train tsm_r18_dsa --recipe experiments/recipes/synthetic_study.yaml\n\n"
            + _set_help(("model", "data", "train", "eval"))
        ),
    )
    p.add_argument("variant", help="model variant (see `dsa-harness list`)")
    p.add_argument("--recipe", metavar="FILE", help="start from a recipe file (experiments/recipes/*.yaml)")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="run folder (default: RESULTS/runs/manual/<run id>; a run a grid of RESULTS has finished is not "
        "trained again); resumed if it holds this run",
    )
    p.add_argument(
        "--results", default="results", metavar="DIR", help="results root for the default --out (default: results)"
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved config and run id, then exit")
    p.add_argument(
        "--wait", action="store_true", help="wait while another process writes --out (default: refuse, naming it)"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="train into a --out folder that holds other files (never ones the run writes, which are refused)",
    )
    add_config_flags(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_train)


def _add_eval_parser(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser(
        "eval",
        help="(re-)evaluate a finished or checkpointed run with other views, on CPU or GPU",
        description="Evaluate the latest checkpoint of RUN_DIR on its test set (or --test) with "
        "the given views and test crop (--test-size, default the run's eval.size); prints and writes "
        "eval-<groups>x<crops>.json in the run (eval-<groups>x<crops>-<size>px.json for another crop than "
        "the training one, -set<hash> for other settings that change the result, all recorded in 'settings'). "
        "The evaluation is the training's own: with the run's settings it reproduces the test of its final.json. "
        "Several GPUs: launch with torchrun and --device cuda (one process per GPU, "
        "each scores its shard; rank 0 writes).",
        formatter_class=HelpFormatter,
        epilog=(
            "examples:\n"
            "  dsa-harness eval results/runs/manual/3f2a9c81d0e4 --crops 1 --set eval.batch_size=16\n"
            "  dsa-harness eval results/runs/manual/3f2a9c81d0e4 --device cuda --amp bf16 --workers 8\n"
            "  torchrun --nproc_per_node 8 -m harness eval results/runs/manual/3f2a9c81d0e4 --device cuda\n\n"
            + _set_help(("data", "eval"))
        ),
    )
    e.add_argument("run_dir", metavar="RUN_DIR")
    e.add_argument(
        "--device",
        default="auto",
        metavar="DEV",
        help="cpu | cuda | cuda:N | auto (default auto: CUDA when visible; under torchrun: cuda:LOCAL_RANK)",
    )
    e.add_argument(
        "--amp",
        choices=("auto", "none", "bf16", "fp16"),
        default="auto",
        help="autocast dtype (default auto: the run's train.amp on CUDA, as its own test; none on the CPU)",
    )
    add_config_flags(e, EVAL_FLAGS, tuple(f for f in SWITCHES if f[0] == "--skip-corrupt"))
    e.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="evaluate this weights file with RUN_DIR's config instead of its checkpoint.pt: a harness checkpoint, "
        "an official DSANet or mmaction2 checkpoint, loaded exactly (a file of another architecture is refused)",
    )
    e.add_argument(
        "--checkpoint-format",
        default="auto",
        choices=("auto", "harness", "official", "mmaction2", "torchvision"),
        help="format of --checkpoint (default: auto, told by its tensor names)",
    )
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.set_defaults(func=_eval)


def config_from_args(args: argparse.Namespace) -> dict:
    """The raw run config of ``train``: the recipe (if any), the variant, then every flag in order."""
    from harness.config import apply_overrides, load_recipe

    raw: dict = {"task": "train"}
    if args.recipe:
        recipe = load_recipe(args.recipe, where="--recipe")
        raw.update({k: v for k, v in recipe.items() if k in ("model", "data", "train", "eval")})
    return apply_overrides(raw, [("model.variant", args.variant), *flag_values(args)])


def _train(args: argparse.Namespace) -> int:
    from harness.config import fingerprint_scope

    with fingerprint_scope():  # the run id's several checks look at the listed videos once
        return _train_in_scope(args)


def _train_in_scope(args: argparse.Namespace) -> int:
    from harness.config import RunConfig
    from harness.errors import MissingFileError

    raw = config_from_args(args)
    data = raw.get("data") or {}
    if not args.print_config:
        for key in ("train", "val", "test"):
            if data.get(key) and not Path(data[key]).exists():
                raise MissingFileError(f"data.{key}: annotation file not found: {data[key]}")
        if not data.get("train") and not data.get("test"):
            raise MissingFileError("no data: give --data (training list) and/or --test, or a --recipe with them")
    rc = RunConfig.from_dict(raw)
    if args.print_config:
        print(json.dumps(rc.record(), indent=2))
        return 0
    out = args.out or str(Path(args.results) / "runs" / "manual" / rc.run_id)
    if not args.out:  # the same run in a grid's folder of this results root: trained once
        held = _held_elsewhere(rc.run_id, Path(args.results) / "runs", Path(out))
        if held is not None:
            return _report_held(rc.run_id, *held)
    from harness.engine.train import STOP, TrainingInterrupted, open_run_dir, train_and_evaluate

    # refuses a folder of another run (naming the keys that differ) before anything is written
    _, rc, final = open_run_dir(rc, out, force=args.force)
    if final is not None:
        if final.get("status") == "diverged":
            print(f"run {rc.run_id} already diverged ({out}/final.json): " + _diverged_line(final))
            return 1
        print(f"run {rc.run_id} is already done ({out}/final.json)" + _result_line(final))
        return 0

    def request_stop(signum, frame):
        STOP.set()

    for sig in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, request_stop)
    Path(out).mkdir(parents=True, exist_ok=True)
    with _run_lock(out, args.wait):  # one writer per run folder, as for grid tasks (torchrun: rank 0 holds it)
        try:
            final = train_and_evaluate(rc, out, echo=not args.quiet, force=args.force)
        except TrainingInterrupted as e:
            print(f"interrupted: {e}")
            return 143
    if final.get("status") == "diverged":
        print(f"run {rc.run_id} diverged ({out}/final.json): " + _diverged_line(final))
        return 1
    print(f"run {rc.run_id} done ({out}/final.json)" + _result_line(final))
    return 0


def _held_elsewhere(run_id: str, runs_root: Path, own: Path):
    """(folder, state, holder) of another folder of ``runs_root`` holding run ``run_id`` (a grid's) over (done,
    diverged, damaged) or in use by a live process (holder: who); None when the default folder's own state
    stands (its run over or alive there, or no other folder holds it so: then it trains or resumes here).
    A grid's job that is only queued cannot be told from the files: `sweep status` asks the scheduler."""
    from harness.results.rundir import RunDir, run_folders_by_id
    from harness.results.status import YIELDING_STATES, run_state, state_elsewhere

    rd = RunDir(own)
    if run_state(rd).state not in YIELDING_STATES:
        return None
    found = state_elsewhere(rd, run_folders_by_id(runs_root).get(run_id, ()))
    if found is None:
        return None
    other, state = found
    if state.state in ("done", "diverged", "damaged"):
        return other, state, None
    holder = other.in_use()
    return (other, state, holder) if holder else None


def _report_held(run_id: str, other, state, holder) -> int:
    """What `train` says of a run another folder holds (see :func:`_held_elsewhere`), and its exit code."""
    from harness.errors import RunDirError

    if state.state == "done":
        print(f"run {run_id} is already done ({other.final_path})" + _result_line(state.final))
        return 0
    if state.state == "diverged":
        print(f"run {run_id} already diverged ({other.final_path}): " + _diverged_line(state.final))
        return 1
    if holder is None:  # damaged
        why = state.problems[0] if state.problems else "a result file is cut"
        raise RunDirError(
            f"run {run_id} is in {other.path}, damaged ({why}): restore its files or move that folder aside "
            "(--out DIR trains a copy elsewhere)"
        )
    raise RunDirError(
        f"run {run_id} is being trained in {other.path} ({holder}): wait for it to finish, or give --out DIR "
        "to train a copy"
    )


def _diverged_line(final: dict) -> str:
    from harness.engine.train import diverged_text

    d = final.get("diverged") or {}
    try:
        where = diverged_text(d)
    except (KeyError, TypeError):
        where = "training loss not finite"
    stopped = "stopped there, not tested" if d.get("stopped") else "trained on (train.stop_on_nonfinite=false)"
    return f"{where}; {stopped}; lower train.base_lr (--lr) or clip gradients (--clip-grad)"


def _evaluate(args: argparse.Namespace, workers, overrides: dict) -> dict:
    from harness.engine.evaluate_run import evaluate_run

    return evaluate_run(
        args.run_dir,
        device=args.device,
        amp=args.amp,
        workers=workers,
        overrides=overrides,
        checkpoint=args.checkpoint,
        checkpoint_format=args.checkpoint_format,
    )


def _run_lock(out: str, wait: bool):
    """The run lock of ``out`` (harness.results.lock) on rank 0 of a torchrun job or in a plain process;
    ranks > 0 follow rank 0 through the engine's collectives."""
    import contextlib
    import os

    from harness.results.lock import RunLock

    if int(os.environ.get("RANK") or 0) > 0:
        return contextlib.nullcontext()
    return RunLock(Path(out)).acquire(wait=wait)


def _result_line(final: dict) -> str:
    test = final.get("test")
    if not test:
        return ""
    line = f": test top-1 {test['top1']:.2f}%  top-5 {test['top5']:.2f}%"
    return line + "".join(f"  {k} {v['top1']:.2f}%" for k, v in (test.get("groups") or {}).items())


def _eval(args: argparse.Namespace) -> int:
    import contextlib

    overrides = dict(flag_values(args))
    workers = overrides.pop("data.num_workers", None)  # --workers: loader processes (default: the run's)
    # the run lock: not while another process writes the run (trains it, or evaluates into it)
    lock = contextlib.nullcontext()
    if Path(args.run_dir).is_dir():
        from harness.errors import RunDirError
        from harness.results.lock import lock_holder

        try:
            lock = _run_lock(args.run_dir, wait=False)
        except RunDirError:  # eval has no --wait / --out: its own advice
            holder = lock_holder(args.run_dir) or {}
            who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} since {holder.get('since', '?')}"
            raise RunDirError(
                f"{args.run_dir} is in use by another process ({who}: it trains the run or evaluates into it); "
                "run eval again once it has finished (`dsa-harness sweep status` or the run's log.txt tell)"
            ) from None
    with lock:
        result = _evaluate(args, workers, overrides)
    if not result:  # a torchrun process other than rank 0
        return 0
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        from harness.report.stats import format_accuracy

        print(
            f"top-1 {format_accuracy(result, 'top1')}  top-5 {format_accuracy(result, 'top5')}  mean class "
            f"{format_accuracy(result, 'mean_class_acc')} (95% intervals over videos)"
            f"  ({result['views']} views of {result['test_size']} px, {result['num_videos']} videos"
            + (f", {result['num_skipped']} unreadable left out" if result.get("num_skipped") else "")
            + f"; {result['device']}, amp {result['amp']}, {result['workers']} workers, "
            f"{result['world_size']} process(es))"
        )
    return 0
