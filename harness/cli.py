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
from harness.helpfmt import HelpFormatter

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
        formatter_class=HelpFormatter,
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
    from harness.measure.commands import add_data_bench  # `data bench` times the data path with measure's tools

    add_data_bench(sub.choices["data"])
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


def _utf8_mode_or_reexec() -> None:
    """Run the command line in Python's UTF-8 mode: where the locale is not UTF-8 (``LANG=C``,
    ``PYTHONUTF8=0``) Python would decode file names and arguments as ASCII, and a non-ASCII results folder
    would reach pandas, Parquet and the report's files as undecodable text. So the process replaces itself
    by the same command in UTF-8 mode (``PYTHONUTF8=1``, inherited by the jobs it starts); file names are
    passed on as the bytes they are."""
    import codecs
    import os

    if sys.flags.utf8_mode or codecs.lookup(sys.getfilesystemencoding()).name == "utf-8":
        return
    if os.environ.get("_DSA_HARNESS_REEXEC"):  # once only
        return
    env = {**os.environ, "PYTHONUTF8": "1", "_DSA_HARNESS_REEXEC": "1"}
    script = sys.argv[0]
    how = ["-m", "harness"] if not script or script.endswith("__main__.py") else [script]  # python -m | console
    os.execve(sys.executable, [sys.executable, "-X", "utf8", *how, *sys.argv[1:]], env)


def _quiet_broken_pipe() -> int:
    """The reader of our output went away (``dsa-harness list --json | head``): stop quietly, as a command
    killed by SIGPIPE does (exit 141), without Python's message at exit."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the process's own command line (the console script, python -m harness)
        _utf8_mode_or_reexec()
    try:
        return _main(argv)
    except BrokenPipeError:
        return _quiet_broken_pipe()


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning(command_name(args), warnings.showwarning)
            rc = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except BrokenPipeError:
        raise
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
