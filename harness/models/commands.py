"""`dsa-harness list [PATTERN]`."""

from __future__ import annotations

import argparse
import json

from tabulate import tabulate

from harness.errors import UsageError


def register_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "list",
        help="list registered model variants",
        description="List registered model variants (timm-style names: <flavour>_r<depth>[_<aggregator>]). "
        "Flavours: tsn (2D, no temporal modelling), tsm (temporal shift), i3d (3D). "
        "Aggregators: dsa (the paper's module), static (fixed learned conv across snippets), "
        "nonlocal (attention across snippets); none = TSN average of snippet scores.",
        epilog="example: dsa-harness list 'i3d_r50*'",
    )
    p.add_argument("pattern", nargs="?", default="*", help="shell-style wildcard, e.g. '*_dsa' (default: all)")
    p.add_argument("--json", action="store_true", help="print the resolved configs as JSON")
    p.set_defaults(func=_list)


def _list(args: argparse.Namespace) -> int:
    from harness.models.registry import list_variants, resolve_config  # lazy: torch only when used

    names = list_variants(args.pattern)
    if not names:
        import difflib

        close = difflib.get_close_matches(args.pattern, list_variants(), n=5, cutoff=0.5)
        raise UsageError(
            f"no variant matches {args.pattern!r}"
            + (f"; closest: {', '.join(close)}" if close else "")
            + "; names are <flavour>_r<depth>[_<aggregator>], e.g. 'tsm_r50*' (`dsa-harness list`)"
        )
    configs = [resolve_config(n) for n in names]
    if args.json:
        print(json.dumps([c.to_dict() for c in configs], indent=2))
        return 0
    rows = []
    for c in configs:
        where = (
            "-"
            if not c.inserts
            else (
                f"{c.position} @ "
                + " ".join(
                    f"{s}:{''.join(map(str, m))}"
                    for s, m in zip(("res2", "res3", "res4", "res5"), c.stage_masks)
                    if any(m)
                )
            )
        )
        rows.append((c.name, c.flavour, f"R{c.depth}", c.aggregator, where, c.num_snippets, c.num_frames))
    print(tabulate(rows, headers=("variant", "flavour", "backbone", "aggregator", "placement", "U", "T")))
    return 0
