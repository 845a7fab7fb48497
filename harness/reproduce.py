"""`dsa-harness reproduce`: the main job, on the embedded data, with no GPU and no download.

1. writes the two embedded synthetic video sets (``data/synth``, the long-range order set; ``data/cued``,
   the cued-order set of the embedded benchmark; each reused when present);
2. runs the profiling grid (``experiments/profile.yaml``: GFLOPs, params, CPU latency of the paper's
   variants) on the local executor;
3. runs the synthetic study grid (``experiments/synthetic_study.yaml``: TSN, TSM, I3D with and without
   DSA and the other aggregators, two seeds) on the local executor;
4. runs the embedded benchmark (``experiments/embedded_*.yaml``: the seven ablation axes of the paper on
   the cued-order set, three seeds each) on the local executor;
5. regenerates ``reports/`` from ``results/`` and prints where the report is.

Every step is resumable: finished runs are skipped, interrupted ones resume from their checkpoints.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from harness.helpfmt import HelpFormatter

STEPS = ("data", "profile", "study", "embedded", "report")
EMBEDDED_GRIDS = tuple(
    f"embedded_{axis}.yaml"
    for axis in ("aggregators", "split_ratio", "alpha", "kernel_size", "position", "stages", "snippets")
)
"""The embedded benchmark's grids, in the order they run (a run two grids share trains once)."""


def register_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce",
        help="the main job: profiling table + synthetic study + embedded benchmark + report",
        description=__doc__,
        formatter_class=HelpFormatter,
        epilog="example: dsa-harness reproduce --steps profile,report   # just the profiling table",
    )
    p.add_argument(
        "--steps", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)} (default: all)"
    )
    p.add_argument(
        "--cluster", default="local", choices=("local", "debug", "slurm"), help="where grids run (default local)"
    )
    p.add_argument(
        "--data-dir",
        default="data/synth",
        help="where the study's synthetic set is written (its grid reads data/synth)",
    )
    p.add_argument(
        "--cued-dir",
        default="data/cued",
        help="where the embedded benchmark's set is written (its grids read data/cued)",
    )
    p.add_argument("--results", default="results", help="results root (default results/)")
    p.add_argument("--reports", default="reports", help="report folder (default reports/)")
    p.add_argument("--experiments", default="experiments", help="grid folder (default experiments/)")
    from harness.config import add_set_argument

    add_set_argument(
        p,
        "change a field of the runs of every grid where its task has it, repeatable: e.g. "
        "--set train.epochs=8 (study and embedded benchmark), --set profile.rounds=3 (profiling only); "
        "run ids follow the change",
    )
    p.set_defaults(func=_reproduce)


def sets_for_task(sets: list[tuple[str, object]], task: str) -> list[tuple[str, object]]:
    """The ``--set`` items that apply to a grid of ``task`` (its sections, and seed)."""
    from harness.config import SECTIONS_BY_TASK

    return [(k, v) for k, v in sets if k == "seed" or k.split(".")[0] in SECTIONS_BY_TASK[task]]


def _reproduce(args: argparse.Namespace) -> int:
    from harness.config import check_dotted_key
    from harness.errors import UsageError

    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = set(steps) - set(STEPS)
    if unknown or not steps:
        raise UsageError(
            f"--steps {args.steps!r}: unknown step(s) {sorted(unknown) or 'none given'}; steps are {', '.join(STEPS)}"
        )
    experiments = Path(args.experiments)

    for key, _ in args.sets:
        check_dotted_key(key)
        if not sets_for_task([(key, None)], "train") and not sets_for_task([(key, None)], "profile"):
            raise UsageError(f"--set {key}: no grid of reproduce has a {key.split('.')[0]} section")
    t0 = time.time()

    def banner(text: str) -> None:
        print(f"\n== [{time.time() - t0:6.0f} s] {text}", flush=True)

    if "data" in steps:
        from harness.data.synthetic import STUDY_SET, generate_synthetic

        banner(f"synthetic long-range set -> {args.data_dir}")
        summary = generate_synthetic(args.data_dir, **STUDY_SET)
        how = "reused" if summary["reused"] else f"written in {summary['seconds']:.1f} s"
        print(
            f"{summary['num_train']} train / {summary['num_val']} val / {summary.get('num_test', 0)} test videos, {how}"
        )
        from harness.data.synthetic_cued import BENCHMARK_SET, generate_cued

        banner(f"cued-order set (embedded benchmark) -> {args.cued_dir}")
        summary = generate_cued(args.cued_dir, **BENCHMARK_SET)
        how = "reused" if summary["reused"] else f"written in {summary['seconds']:.1f} s"
        print(f"{summary['num_train']} train / {summary['num_val']} val / {summary['num_test']} test videos, {how}")
    from harness.launch.submit import run_grid
    from harness.results.rundir import RunDir
    from harness.results.status import run_state

    failed = 0
    grids = [("profile", "profile.yaml", "profile"), ("study", "synthetic_study.yaml", "train")]
    grids += [("embedded", grid, "train") for grid in EMBEDDED_GRIDS]
    for step, grid, task in grids:
        if step in steps:
            banner(f"grid {experiments / grid} on the {args.cluster} executor")
            run_dirs = run_grid(
                experiments / grid,
                cluster=args.cluster,
                results_root=args.results,
                overrides=sets_for_task(args.sets, task),
            )
            failed += sum(run_state(RunDir(d)).state != "done" for d in run_dirs)  # failed, diverged, ...
    if "report" in steps:
        from harness.report import write_report

        banner(f"report -> {args.reports}/")
        index = write_report(results_root=args.results, reports_dir=args.reports, experiments_dir=str(experiments))
        print(f"\nreport: {index}")
    note = f" ({failed} run(s) not done: failed or diverged; see `dsa-harness sweep status`)"
    banner("done" + (note if failed else ""))
    return 1 if failed else 0
