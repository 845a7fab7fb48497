"""`dsa-harness sweep show | submit | status | cancel | logs`: ablation grids on SLURM or locally."""

from __future__ import annotations

import argparse
import json
import math

from harness.errors import UsageError
from harness.helpfmt import HelpFormatter

EPILOG_SWEEP = """\
A grid file (experiments/*.yaml) expands into runs: product axes x zipped axes x seeds.
Each run lives in RESULTS/runs/<grid>/<run_id>/, where run_id is a hash of its resolved
configuration (seed included, resources not). Submitting again is always safe: runs with
final.json are skipped, queued/running ones are not submitted twice, interrupted ones resume
from their checkpoint, failed ones wait for --retry-failed.

examples:
  dsa-harness sweep show experiments/ablation_split_ratio.yaml --no-check-data
  dsa-harness sweep submit experiments/profile.yaml --cluster local
  dsa-harness sweep submit experiments/ablation_alpha.yaml --cluster slurm \\
      --partition gpu --account myproj --setup 'module load cuda/12.1'
  dsa-harness sweep status experiments/ablation_alpha.yaml
  dsa-harness sweep logs 3f2a9c81d0e4
"""

STATES_HELP = """\
states: pending (not submitted, or its job vanished before starting), queued, running,
requeued (preempted/timed out, checkpointed, back in the queue), done (final.json parses),
diverged (final.json says the training loss turned NaN/inf: over, never resubmitted),
damaged (finished, but a result file is cut: never averaged, not resubmitted; see its error column),
foreign (its config.json is another run's: a copied or renamed folder; never averaged nor resubmitted),
failed (error.json; resubmit with --retry-failed), incomplete (started, job gone, no error, or its
config.json cut: resubmitted and resumed by default), cancelled, unknown (SLURM state unreadable)."""


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--results",
        "--results-root",
        dest="results_root",
        default="results",
        metavar="DIR",
        help="results root: runs go to DIR/runs/<grid>/<run_id> (default: results)",
    )


def _add_set(p: argparse.ArgumentParser) -> None:
    from harness.config import add_set_argument

    add_set_argument(
        p,
        "change a field of every run's config, repeatable (e.g. --set train.epochs=2); applied to "
        "the grid's base before its axes, so run ids follow; keys: `dsa-harness train --help`",
    )


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


SHOW_DESCRIPTION = """\
Expand a grid file, validate every run and print one line per run with its estimates.

Cost: GPU-hours from the training videos per epoch (cost.train_clips, else the lines of data.train), epochs,
test videos x views and a training throughput of v videos/s per device:
    hours = (epochs x videos + test videos x views x Ft / (3 F)) / v / 3600
(F, Ft: fvcore GFLOPs per view at the training and the test crop). v is, per run, first found:
  measured  --calibrate DIR (else the grid's cost.from): profile runs (task: profile, profile.train: true)
            of the run's model, crop and AMP dtype on the GPU named by --gpu / cost.gpu (part of the
            device name; "cpu" for CPU records), else on any CUDA device; at the run's per-GPU batch, else
            the nearest batch (said in the table). v = their train_videos_s (batch / train step), not
            train_clips_s (snippets/s). A GPU run never takes a CPU record unless cost.gpu is "cpu".
  declared  --videos-per-s, else cost.throughput.videos_per_s (clips_per_s: its older name, also videos/s
            per device, not the snippets/s of the training log)
  assumed   --tflops, else cost.throughput.tflops: hours = (3 x epochs x videos x F + test videos x views
            x Ft) / (tflops x 1000) / 3600
The 'throughput (source)' column says which, e.g. "measured: NVIDIA H200, batch 8, bf16 (results/runs/...)"
or "assumed 12 TFLOP/s (no profile record of this model ...)"; formula: harness.launch.cost.estimate_cost.
'test GFLOPs/video' is the cost of testing one video: views x GFLOPs per view at the test crop.

'peak mem/GPU': peak training memory of one GPU in GB (10^9 bytes). Measured where a measurement exists
(the run's final.json, or RESULTS/benchmarks/train_memory.json written by benchmarks/gpu_check.py for the
same model, batch, crop and AMP); else the stated model of harness.measure.memory:
    peak = A + X + P x (4 weights + 4 gradients + 4 momentum [+ 2 AMP weight copies] [+ 4 DDP buckets])
A = bytes of the tensors autograd saves in one forward pass of the per-GPU batch (train.batch_size videos
of U x T frames at data.size, in the AMP dtype), counted on the meta device (no memory, no compute); X = the
input batch (uint8 + fp32); P = parameters. Not counted: cuDNN workspaces, allocator fragmentation, the
CUDA context. With the GPU's memory (resources.gpu_mem_gb or --gpu-mem-gb) the 'memory' column warns
where the peak exceeds 90% of it.

Resolution (train grids): from the test videos (cost.test_clips, else the lines of data.test), the grid's
seeds, the expected top-1 (the paper's verified numbers, else earlier runs of the grid, else an assumed 70%)
and the discordance rate of two variants (share of videos one gets right and the other wrong: measured from
earlier runs' predictions paired with their baseline, else an assumed default): the ± of one run's top-1
(95% Wilson) and the smallest Δ top-1 a paired test over the same videos resolves at 95% with 80% power;
--target-delta D: the seeds that resolve D (harness.launch.resolution)."""

EPILOG_SHOW = """examples:
  dsa-harness sweep show experiments/ablation_alpha.yaml --no-check-data --gpu-mem-gb 141
  dsa-harness sweep show experiments/ablation_alpha.yaml --no-check-data --calibrate results/runs/profile_gpu --gpu H200
  dsa-harness sweep show experiments/ablation_alpha.yaml --no-check-data --videos-per-s 40
  dsa-harness sweep show experiments/ablation_aggregators.yaml --no-check-data --target-delta 0.5
"""


def register_commands(subparsers) -> None:
    sweep = subparsers.add_parser(
        "sweep",
        help="show, submit, follow and cancel ablation grids (SLURM job arrays or local)",
        description="Launch ablation grids through submitit: on SLURM as job arrays, locally on this "
        "machine's cores/GPUs, or in-process for debugging. Resumable and idempotent.",
        epilog=EPILOG_SWEEP,
        formatter_class=HelpFormatter,
    )
    sub = sweep.add_subparsers(dest="sweep_command", metavar="SUBCOMMAND")
    sweep.set_defaults(func=lambda args: (sweep.print_help(), 2)[1])
    _add_show_parser(sub)
    _add_submit_parser(sub)
    _add_status_parser(sub)
    _add_cancel_parser(sub)
    _add_logs_parser(sub)


def _add_show_parser(sub) -> None:
    show = sub.add_parser(
        "show",
        help="expand a grid and print its runs with an estimated cost",
        description=SHOW_DESCRIPTION,
        epilog=EPILOG_SHOW,
        formatter_class=HelpFormatter,
    )
    show.add_argument("grid", metavar="FILE", help="grid file, e.g. experiments/ablation_alpha.yaml")
    _add_common(show)
    show.add_argument(
        "--no-check-data",
        action="store_true",
        help="do not require the data annotation files to exist (e.g. datasets not on this machine)",
    )
    show.add_argument(
        "--no-cost", action="store_true", help="skip the cost and memory estimates (no FLOPs or memory counting)"
    )
    _add_estimate_options(show)
    show.add_argument(
        "--resolved",
        metavar="RUN",
        nargs="?",
        const="all",
        help="print the fully resolved config of run RUN (index or run id prefix), or of every run",
    )
    _add_set(show)
    show.set_defaults(func=_cmd_show)


def _add_estimate_options(show: argparse.ArgumentParser) -> None:
    """The options of ``sweep show`` that feed its cost, memory and resolution estimates."""
    show.add_argument(
        "--calibrate",
        metavar="DIR",
        help="take each run's training throughput from the profile runs (profile.train: true) under DIR: a "
        "results folder, results/runs or results/runs/<profile grid> (default: the grid's cost.from)",
    )
    show.add_argument(
        "--gpu",
        metavar="NAME",
        help='calibrate only from profile records whose device name contains NAME, e.g. H200 ("cpu": CPU '
        "records; default: the grid's cost.gpu, else any CUDA device)",
    )
    show.add_argument(
        "--videos-per-s",
        "--clips-per-s",
        dest="videos_per_s",
        type=float,
        metavar="N",
        help="training throughput in videos (samples of U snippets) per second per device, instead of the "
        "grid's cost.throughput (--clips-per-s: older name, same meaning); measured records still come first",
    )
    show.add_argument(
        "--tflops", type=float, metavar="N", help="sustained fvcore TFLOP/s per GPU to use instead of the grid's"
    )
    show.add_argument(
        "--loader-record",
        metavar="FILE",
        help="a `dsa-harness data bench` record: the data path's videos/s per core, so that a GPU run trains at "
        "min(GPU step, that x resources.cpus_per_task per GPU) (default: --loader-videos-per-s, else the grid's "
        "cost.loader_videos_per_s, else the GPU step alone)",
    )
    show.add_argument(
        "--loader-videos-per-s",
        type=float,
        metavar="N",
        help="the data path's videos/s of one loader process (one core), instead of a record",
    )
    show.add_argument(
        "--gpu-mem-gb",
        type=float,
        metavar="GB",
        help="memory of one GPU of the partition (default: resources.gpu_mem_gb): warn where a run's peak "
        "training memory exceeds 90%% of it",
    )
    show.add_argument(
        "--target-delta",
        type=float,
        metavar="POINTS",
        help="a Δ top-1 (points) the grid should resolve against its baseline: print how many seeds do (paired "
        "test over the same videos, 95%%, 80%% power)",
    )


def _add_submit_parser(sub) -> None:
    submit = sub.add_parser(
        "submit",
        help="validate a grid and submit the runs that are not done/queued/running",
        description="Validate every run (all problems reported at once; nothing is submitted if any run "
        "is invalid), skip finished, queued and running runs, and submit the rest. Returns at "
        "once (except --cluster debug); follow with `sweep status`.\n\n" + STATES_HELP,
        formatter_class=HelpFormatter,
    )
    submit.add_argument("grid", metavar="FILE", help="grid file")
    submit.add_argument(
        "--cluster",
        choices=("slurm", "local", "debug"),
        default="local",
        help="slurm: one job array per resource group; local: worker processes on this "
        "machine; debug: in this process (default: local)",
    )
    _add_common(submit)
    submit.add_argument("--retry-failed", action="store_true", help="also resubmit runs whose last attempt failed")
    submit.add_argument("--no-check-data", action="store_true", help="do not require the data files to exist")
    submit.add_argument("--dry-run", action="store_true", help="validate and print what would be submitted")
    submit.add_argument("--wait", action="store_true", help="wait for the runs with a progress bar")
    _add_set(submit)
    _add_slurm_options(submit)
    _add_local_options(submit)
    submit.set_defaults(func=_cmd_submit)


def _add_slurm_options(submit: argparse.ArgumentParser) -> None:
    g = submit.add_argument_group("slurm (override the grid's resources)")
    g.add_argument("--partition")
    g.add_argument("--account")
    g.add_argument("--qos")
    g.add_argument("--constraint")
    g.add_argument("--time-min", type=int, metavar="MIN", help="time limit per job")
    g.add_argument("--mem-gb", type=float, metavar="GB", help="memory per node")
    g.add_argument("--array-parallelism", type=int, metavar="N", help="at most N array tasks at once")
    g.add_argument(
        "--sbatch",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra sbatch option, repeatable (e.g. --sbatch exclude=node12)",
    )
    g.add_argument(
        "--setup",
        action="append",
        default=[],
        metavar="LINE",
        help="shell line run before the job, repeatable (e.g. 'module load cuda')",
    )
    g.add_argument(
        "--no-snapshot",
        dest="snapshot",
        action="store_false",
        default=None,
        help="run the live checkout instead of a frozen copy of the code (default for slurm: "
        "snapshot into RESULTS/snapshots/<commit>-<hash>)",
    )
    g.add_argument("--snapshot", dest="snapshot", action="store_true", help="freeze the code also for local")


def _add_local_options(submit: argparse.ArgumentParser) -> None:
    loc = submit.add_argument_group("local")
    loc.add_argument(
        "--max-parallel",
        type=int,
        metavar="N",
        help="workers, each running its runs in turn (default: cores // (cpus_per_task x tasks), or "
        "GPUs // GPUs per run); a run is resources.tasks processes (one per GPU), as on SLURM",
    )
    loc.add_argument(
        "--allow-fewer-gpus",
        action="store_true",
        help="run a run asking for more GPUs than this machine has on the GPUs there are, one process "
        "each (smaller world size: global batch and learning rate scale down); refused by default",
    )


def _add_status_parser(sub) -> None:
    status = sub.add_parser(
        "status",
        help="table of a grid's runs: state, job id, attempts, last metric, last error, log",
        description="One line per run. A run is done only when its own final.json parses, whatever the "
        "scheduler says.\n\n" + STATES_HELP,
        formatter_class=HelpFormatter,
    )
    status.add_argument("grid", metavar="FILE", help="grid file")
    _add_common(status)
    status.add_argument("--wide", action="store_true", help="full error lines and log paths")
    status.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    _add_set(status)
    status.set_defaults(func=_cmd_status)


def _add_cancel_parser(sub) -> None:
    cancel = sub.add_parser(
        "cancel",
        help="cancel a grid's queued and running jobs",
        description="scancel the grid's live SLURM jobs (or stop its local workers) and "
        "mark the runs cancelled; finished runs are untouched and a later "
        "submit resumes the others.",
    )
    cancel.add_argument("grid", metavar="FILE", help="grid file")
    _add_common(cancel)
    cancel.add_argument(
        "--run", action="append", default=[], metavar="RUN_ID", help="only this run (id or prefix), repeatable"
    )
    _add_set(cancel)
    cancel.set_defaults(func=_cmd_cancel)


def _add_logs_parser(sub) -> None:
    logs = sub.add_parser(
        "logs",
        help="a run's log.txt, job stdout/stderr and last error",
        description="Print the tails of a run's log.txt, its job's stdout and stderr "
        "(submitit logs) and its error.json traceback.",
    )
    logs.add_argument("run", metavar="RUN", help="run id (or a unique prefix) or run directory")
    _add_common(logs)
    logs.add_argument("--lines", type=int, default=40, metavar="N", help="lines per log (default 40)")
    logs.set_defaults(func=_cmd_logs)


def _cmd_show(args) -> int:
    from harness.launch.cost import estimate_cost, estimate_memory, show_table
    from harness.launch.grid import GridValidationError, expand, load_grid, validate_runs

    for flag, value in (
        ("--videos-per-s", args.videos_per_s),
        ("--tflops", args.tflops),
        ("--gpu-mem-gb", args.gpu_mem_gb),
        ("--loader-videos-per-s", args.loader_videos_per_s),
    ):
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise UsageError(f"{flag} {value}: must be a finite number > 0")
    if args.target_delta is not None and not (0 < args.target_delta < 100):
        raise UsageError(f"--target-delta {args.target_delta}: must be in (0, 100) points of top-1")
    grid = load_grid(args.grid)
    runs = expand(grid, args.results_root, args.sets)
    if args.resolved:
        chosen = [
            r
            for r in runs
            if args.resolved == "all"
            or (
                str(r.index) == args.resolved
                if args.resolved.isdigit() and int(args.resolved) < len(runs)
                else r.run_id.startswith(args.resolved)
            )
        ]
        if not chosen:
            raise UsageError(f"--resolved {args.resolved}: no run with that index or run id prefix")
        for r in chosen:
            print(
                f"# run {r.index}: {r.run_id}"
                + (" (provisional id: input files not found)" if r.run_config.provisional else "")
            )
            print(json.dumps(r.config, indent=2))
        return 0
    problems = validate_runs(grid, runs, check_data=not args.no_check_data)
    costs = None
    if not args.no_cost and not problems:
        tp = {}
        if args.videos_per_s:
            tp["videos_per_s"] = args.videos_per_s
        if args.tflops:
            tp["tflops"] = args.tflops
        costs = estimate_cost(
            grid,
            runs,
            throughput=tp,
            flops_cache=f"{args.results_root}/cache/flops.json",
            calibrate=args.calibrate,
            gpu=args.gpu,
            loader=_loader_arg(args),
        )
    memory = None
    if not args.no_cost and not problems and grid.task == "train":
        memory = estimate_memory(
            runs, args.results_root, gpu_mem_gb=args.gpu_mem_gb, cache_file=f"{args.results_root}/cache/memory.json"
        )
    print(show_table(grid, runs, costs, memory))
    if grid.task == "train" and not problems:
        from harness.launch.resolution import plan_resolution, resolution_text

        print("\n" + resolution_text(plan_resolution(grid, runs, args.results_root, target_delta=args.target_delta)))
    if problems:
        raise GridValidationError(problems)
    return 0


def _loader_arg(args) -> dict | None:
    """``sweep show``'s data path: ``--loader-record`` (checked: a ``data bench`` record), else the declared rate."""
    if args.loader_record:
        from harness.results.rundir import read_json

        try:
            record = read_json(args.loader_record)
        except (OSError, ValueError) as e:
            raise UsageError(f"--loader-record {args.loader_record}: cannot be read ({e})") from None
        if not isinstance(record, dict) or record.get("task") != "data_bench" or not record.get("results"):
            raise UsageError(
                f"--loader-record {args.loader_record}: not a `dsa-harness data bench` record (no task data_bench "
                "with results); write one with `dsa-harness data bench LIST --out FILE`"
            )
        return {**record, "path": str(args.loader_record)}
    return {"videos_per_s_per_core": args.loader_videos_per_s} if args.loader_videos_per_s else None


def _cmd_submit(args) -> int:
    from harness.launch.status import collect_status, status_table
    from harness.launch.submit import LaunchOptions, submit

    opts = LaunchOptions(
        cluster=args.cluster,
        partition=args.partition,
        account=args.account,
        qos=args.qos,
        constraint=args.constraint,
        array_parallelism=args.array_parallelism,
        sbatch=dict(args.sbatch),
        setup=list(args.setup),
        time_min=args.time_min,
        mem_gb=args.mem_gb,
        max_parallel=args.max_parallel,
        allow_fewer_gpus=args.allow_fewer_gpus,
        snapshot=args.snapshot,
    )
    if args.wait:
        from harness.launch.submit import run_grid

        run_grid(
            args.grid,
            cluster=args.cluster,
            results_root=args.results_root,
            options=opts,
            retry_failed=args.retry_failed,
            check_data=not args.no_check_data,
            overrides=args.sets,
        )
        from harness.launch.grid import load_and_expand

        grid, runs = load_and_expand(args.grid, args.results_root, overrides=args.sets)
        statuses = collect_status(runs)
        print(status_table(statuses, grid))
        return 1 if any(s.status in ("failed", "diverged") for s in statuses) else 0
    result = submit(
        args.grid,
        cluster=args.cluster,
        results_root=args.results_root,
        options=opts,
        retry_failed=args.retry_failed,
        check_data=not args.no_check_data,
        dry_run=args.dry_run,
        overrides=args.sets,
    )
    if args.dry_run:
        print(
            f"dry run: would submit {len(result.submitted)} of {len(result.runs)} runs: "
            + " ".join(r.run_id for r in result.submitted)
        )
        return 0
    print(result.summary())
    if result.snapshot:
        print(f"code snapshot: {result.snapshot} (commit {result.commit})")
    if result.submitted and args.cluster != "debug":
        print(f"follow with: dsa-harness sweep status {args.grid}{_repeat_options(args)}")
    if args.cluster == "debug":
        statuses = collect_status(result.runs)
        print(status_table(statuses, result.grid))
        return 1 if any(s.status in ("failed", "diverged") for s in statuses) else 0
    return 0


def _repeat_options(args) -> str:
    """The options that select the same runs again (for the "follow with" hint)."""
    import shlex

    out = [f"--results {shlex.quote(args.results_root)}"] if args.results_root != "results" else []
    out += [f"--set {shlex.quote(f'{k}={json.dumps(v) if not isinstance(v, str) else v}')}" for k, v in args.sets]
    return "".join(" " + o for o in out)


def _cmd_status(args) -> int:
    from harness.launch.grid import load_and_expand
    from harness.launch.status import collect_status, status_table

    grid, runs = load_and_expand(args.grid, args.results_root, overrides=args.sets)
    statuses = collect_status(runs)
    if args.json:
        for s in statuses:
            print(
                json.dumps(
                    {
                        "index": s.index,
                        "run_id": s.run_id,
                        "status": s.status,
                        "job_id": s.job_id,
                        "attempts": s.attempts,
                        "requeues": s.requeues,
                        "metric": s.metric,
                        "error": s.error,
                        "log": s.log,
                        "run_dir": str(s.run_dir),
                    },
                    default=str,
                )
            )
    else:
        print(status_table(statuses, grid, wide=args.wide))
        note = other_runs_note(grid, runs, args.results_root)
        if note:
            print(note)
    return 0


def other_runs_note(grid, runs, results_root) -> str:
    """A plain note on run folders of the grid's folder that the grid does not expand to now: made under
    the earlier run identity (config.json without identity_version), or by another version of the grid
    file / other --set values. They are never reused or resubmitted."""
    from pathlib import Path

    from harness.config import IDENTITY_VERSION
    from harness.results.rundir import iter_run_dirs

    current = {r.run_id for r in runs}
    legacy = other = 0
    for rd in iter_run_dirs(Path(results_root) / "runs" / grid.name):
        if rd.run_id in current:
            continue
        try:
            version = rd.read_config().get("identity_version")
        except (OSError, ValueError, AttributeError):
            version = None
        if version == IDENTITY_VERSION:
            other += 1
        else:
            legacy += 1
    parts = []
    if legacy:
        parts.append(
            f"note: {legacy} run folder(s) in {Path(results_root) / 'runs' / grid.name} were made under the "
            f"earlier run identity (version 1 hashed the unresolved config, 2 the lists without their videos); "
            f"they are not reused or resubmitted: "
            f"`sweep submit` runs this grid under the current identity"
        )
    if other:
        parts.append(
            f"note: {other} run folder(s) of this grid's folder belong to another version of the grid file "
            f"(or other --set values); not shown"
        )
    return "\n".join(parts)


def _cmd_cancel(args) -> int:
    from harness.launch.control import cancel

    cancelled = cancel(args.grid, args.results_root, run_ids=args.run or None, overrides=args.sets)
    print(f"cancelled {len(cancelled)} run(s)" + (": " + " ".join(s.run_id for s in cancelled) if cancelled else ""))
    return 0


def _cmd_logs(args) -> int:
    from harness.launch.control import find_run, run_logs

    if args.lines < 1:
        raise UsageError(f"--lines {args.lines}: must be >= 1")
    print(run_logs(find_run(args.run, args.results_root), lines=args.lines))
    return 0
