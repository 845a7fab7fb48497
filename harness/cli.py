"""The `dsa-harness` command line. Thin: parse, call, print.

Each area registers its own sub-commands through ``register_commands(subparsers)`` in
``harness/<area>/commands.py``; this module only assembles them and maps errors to
exit codes (2 for bad input, printed without a traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from harness.errors import HarnessError

COMMAND_MODULES = (
    "harness.models.commands",   # list
    "harness.measure.commands",  # profile
    "harness.data.commands",     # data check | synth
    "harness.engine.commands",   # train, eval
    "harness.launch.commands",   # sweep show | submit | status | cancel | logs ; reproduce
    "harness.report.commands",   # report
    "harness.reproduce",         # reproduce (the main job)
)



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dsa-harness",
        description=(
            "Reference harness for DSANet-style video models (Dynamic Segment Aggregation, "
            "ACM MM 2021): list and profile model variants, generate and check video data, "
            "train and evaluate, launch ablation grids on SLURM or locally, and regenerate "
            "the paper's tables and plots from results/."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  dsa-harness list '*dsa*'                 # variants whose name matches\n"
            "  dsa-harness profile i3d_r50_dsa           # GFLOPs, params, CPU latency\n"
            "  dsa-harness data synth --out data/synth   # write the embedded long-range video set\n"
            "  dsa-harness reproduce                     # the main job (profiling + study + report)\n"
            "run `dsa-harness COMMAND --help` for the options of each command."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # area not built yet
                continue
            raise
        module.register_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc = args.func(args)
    except (HarnessError, ValueError, FileNotFoundError) as e:
        print(f"dsa-harness {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    raise SystemExit(main())
