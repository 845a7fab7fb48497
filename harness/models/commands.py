"""`dsa-harness list [PATTERN]` and `dsa-harness weights imagenet`."""

from __future__ import annotations

import argparse
import json

from tabulate import tabulate

from harness.errors import UsageError
from harness.helpfmt import HelpFormatter


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

    w = sub.add_parser(
        "weights",
        help="make weights files (the ImageNet initialisation the paper grids use)",
        description="Make weights files for model.pretrained.",
    )
    wsub = w.add_subparsers(dest="weights_command", metavar="SUBCOMMAND")
    i = wsub.add_parser(
        "imagenet",
        help="write torchvision's ImageNet ResNet weights where model.pretrained expects them",
        description="Write the ImageNet-initialised weights file of --arch (the paper grids' "
        "data/pretrained/resnet50_imagenet.pth): torchvision's ResNet state dict (IMAGENET1K_V1, the weights the "
        "DSANet and TSM code bases start from), checked tensor by tensor against torchvision's layout, saved as "
        "float32. From --from (a torchvision .pth on this machine) or downloaded through torchvision (needs "
        "torchvision installed and internet access). Models load it 2-D as it is and inflate it for I3D; their "
        "aggregators and a classifier of another class count start from their initialisation.",
        formatter_class=HelpFormatter,
        epilog="examples:\n"
        "  dsa-harness weights imagenet --arch resnet50 --out data/pretrained/resnet50_imagenet.pth\n"
        "  dsa-harness weights imagenet --arch resnet50 --out data/pretrained/resnet50_imagenet.pth \\\n"
        "      --from ~/Downloads/resnet50-0676ba61.pth   # downloaded elsewhere (download.pytorch.org/models/)",
    )
    i.add_argument("--arch", default="resnet50", help="resnet18 | resnet34 | resnet50 | resnet101 (default: resnet50)")
    i.add_argument("--out", required=True, metavar="FILE", help="weights file to write (model.pretrained)")
    i.add_argument(
        "--from",
        dest="source",
        metavar="FILE",
        help="a torchvision state dict on this machine (e.g. resnet50-0676ba61.pth) instead of downloading",
    )
    i.add_argument("--force", action="store_true", help="overwrite an existing --out")
    i.set_defaults(func=_imagenet)


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


def _imagenet(args: argparse.Namespace) -> int:
    from harness.models.weights import IMAGENET_ARCHS, write_imagenet_weights  # lazy: torch only when used

    if args.arch not in IMAGENET_ARCHS:
        raise UsageError(f"--arch {args.arch!r}: unknown; archs: {', '.join(IMAGENET_ARCHS)}")
    done = write_imagenet_weights(args.arch, args.out, source=args.source, force=args.force)
    print(
        f"wrote {done['out']}: {done['source']}, {done['tensors']} tensors, {done['params_m']:.2f} M parameters "
        f"(sha256 {done['sha256'][:16]}); use it as model.pretrained"
    )
    return 0
