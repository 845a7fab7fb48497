"""The `dsa-harness` command line. Thin: parse, call, print.

Each area registers its own sub-commands through ``register_commands(subparsers)`` in
``harness/<area>/commands.py``; this module only assembles them and maps errors to exit codes:
the project's own errors (:class:`harness.errors.HarnessError`: bad input, a fixable state) print
one line ``dsa-harness COMMAND: error: ...`` and exit 2 (``--debug``: with their traceback); any
other exception is a bug and propagates with its traceback (exit 1); Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
import traceback
import warnings

from harness.errors import HarnessError, HarnessWarning

COMMAND_MODULES = (
    "harness.models.commands",  # list, weights imagenet
    "harness.measure.commands",  # profile
    "harness.data.commands",  # data check | synth
    "harness.engine.commands",  # train, eval
    "harness.launch.commands",  # sweep show | submit | status | cancel | logs ; reproduce
    "harness.report.commands",  # report
    "harness.reproduce",  # reproduce (the main job)
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
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an input error too (bugs always show theirs)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register_commands(sub)
    return parser


def command_name(args: argparse.Namespace) -> str:
    """``train``, or ``sweep show`` / ``data check`` for the commands with sub-commands."""
    sub = getattr(args, f"{args.command}_command", None)
    return f"{args.command} {sub}" if sub else str(args.command)


def _one_line_warning(command: str, show):
    """``warnings.showwarning`` printing a :class:`HarnessWarning` as one line naming the command."""

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, HarnessWarning):
            print(f"dsa-harness {command}: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning(command_name(args), warnings.showwarning)
            rc = args.func(args)
    except HarnessError as e:  # bad input or a fixable state; anything else is a bug: its traceback shows
        if args.debug:
            traceback.print_exc()
        print(f"dsa-harness {command_name(args)}: error: {str(e) or type(e).__name__}", file=sys.stderr)
        return 2
    except OSError as e:  # the machine, not the input: a full or read-only disk, permissions, a vanished mount
        if args.debug or not e.filename:
            raise
        hint = {
            errno.ENOSPC: "free some space",
            errno.EACCES: "check its permissions",
            errno.EPERM: "check its permissions",
            errno.EROFS: "the file system is read-only: use a writable folder",
            errno.EDQUOT: "the disk quota is exceeded",
        }.get(e.errno, "")
        where = e.filename if not e.filename2 else f"{e.filename} -> {e.filename2}"
        print(
            f"dsa-harness {command_name(args)}: error: {e.strerror or e}: {where}" + (f" ({hint})" if hint else ""),
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    raise SystemExit(main())
