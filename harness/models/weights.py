"""Weights in: our checkpoints, the official DSANet code's, mmaction2's, torchvision's ImageNet ResNets.

One reader for every weights file a model takes (``model.pretrained``, ``dsa-harness eval --checkpoint``):

- ``harness``: our own names (``conv1.weight``, ``layer2.1.aggregator.kernel_generator.0.weight``,
  ``fc.weight``), as a run's ``checkpoint.pt`` (the state dict under ``"model"``) or a bare state dict.
- ``official``: state dicts of the authors' DSANet code (mmaction-0.x ``Recognizer3D``): ``backbone.`` prefix,
  a block holding DSA wrapped as ``layerS.B.block.*`` next to ``layerS.B.dsa.generate.{0,1,3}.*`` (DSA's kernel
  generator: Linear, BatchNorm1d, -, Linear), head ``cls_head.fc_cls.*``; TSM's shift wraps ``conv1`` as
  ``conv1.net``.
- ``mmaction2``: ``backbone.`` prefix, each conv with its norm a ``ConvModule`` (``conv1.conv.weight``,
  ``conv1.bn.weight``; ``downsample.conv`` / ``downsample.bn``), TSM's shift wraps ``conv1.conv`` as
  ``conv1.conv.net``, head ``cls_head.fc_cls.*`` (the renaming mmaction2's own ResNet3d uses to inflate
  torchvision weights).
- ``torchvision``: an ImageNet ResNet (``torchvision.models.resnet50().state_dict()``: our names, 2-D kernels,
  a 1000-way ``fc``). 2-D kernels are inflated for I3D: repeated over time and divided by the temporal size.

``auto`` tells them apart by their names (``backbone.`` + ``ConvModule`` names: mmaction2; ``backbone.``
otherwise: official; our names with 2-D ``conv1``, a 1000-way ``fc`` and no aggregator: torchvision; else
harness). Two ways to load:

- exact (``eval --checkpoint``, ``load_checkpoint_into``): every tensor of the model comes from the file and
  every tensor of the file has its place; for official and mmaction2 files of 2-D models, the blocks the file
  shifts in time must be the blocks the model shifts (a TSN file is not a TSM model).
- init (``model.pretrained``, ``load_pretrained``): the same, except that the model's aggregators may be
  missing from the file (they start from their initialisation) and a classifier of another class count is
  skipped (fine-tuning on another dataset).

A file that does not fit raises :class:`WeightLoadError`, one line naming the model's variant and the first
mismatching tensor. Files are read with ``torch.load(weights_only=True)``; nothing is ever downloaded here
except by ``write_imagenet_weights`` through torchvision, when the machine can.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HarnessError, MissingFileError, UsageError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from harness.models.config import ModelConfig

FORMATS = ("auto", "harness", "official", "mmaction2", "torchvision")
FORMAT_NAMES = {
    "harness": "harness format",
    "official": "official DSANet format",
    "mmaction2": "mmaction2 format",
    "torchvision": "torchvision ImageNet format",
}
IMAGENET_ARCHS = {"resnet18": 18, "resnet34": 34, "resnet50": 50, "resnet101": 101}
"""``dsa-harness weights imagenet --arch``: torchvision's ResNets of the depths the harness builds."""


class WeightLoadError(HarnessError, ValueError):
    """A weights file that cannot be read, or whose tensors do not fit the model: one line naming the file,
    the model's variant and the first mismatching tensor (with the counts of all mismatches)."""


# ----------------------------------------------------------------------------------------
# reading and renaming


@dataclass
class Weights:
    """A weights file read and renamed to our names: ``state`` (our name -> tensor), ``source`` (our name ->
    the file's name), ``format``, and for official / mmaction2 files the blocks the file shifts in time
    (``shifted``, e.g. ``{"layer1.0", ...}``; None where the format does not say)."""

    path: str
    format: str
    state: dict[str, torch.Tensor]
    source: dict[str, str]
    shifted: set[str] | None = None
    ignored: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int | None:
        fc = self.state.get("fc.weight")
        return None if fc is None or fc.dim() != 2 else int(fc.shape[0])


def read_weights(path: str | os.PathLike, format: str = "auto", *, what: str = "weights") -> Weights:
    """Read ``path`` (``format``: one of :data:`FORMATS`) and rename its tensors to ours.

    Accepts a bare state dict or one under ``"model"`` (our ``checkpoint.pt``) or ``"state_dict"`` (mmaction,
    mmcv), a ``module.`` prefix (DataParallel) removed. Raises ``MissingFileError`` for a missing file and
    :class:`WeightLoadError` for one that is not a weights-only state dict, or an unknown ``format``.
    ``what`` starts every message (the option or field that named the file).
    """
    import torch

    if format not in FORMATS:
        raise WeightLoadError(f"{what}: unknown weights format {format!r}; formats: {', '.join(FORMATS)}")
    if not os.path.isfile(path):
        raise MissingFileError(f"{what}: weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling problem is a bad file
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise WeightLoadError(
            f"{what}: cannot read {path} as a weights-only state dict: {reason} (a checkpoint holding Python "
            "objects besides its tensors, e.g. an mmaction2 one with its training state, is not unpickled here: "
            "if you trust it, keep its weights: python -c \"import torch; c = torch.load('IN', weights_only=False); "
            "torch.save(c.get('state_dict', c), 'OUT')\")"
        ) from e
    state = obj
    if isinstance(obj, Mapping):
        for key in ("model", "state_dict"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                state = inner
                break
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightLoadError(f"{what}: {path} is not a state dict (a mapping of names to tensors)")
    state = {str(k).removeprefix("module."): v for k, v in state.items()}
    fmt = detect_format(state) if format == "auto" else format
    return _rename(str(path), fmt, state)


_MM_CONVMODULE = re.compile(r"(^|\.)(conv\d+|downsample)\.(conv|bn)\.")


def detect_format(state: Mapping[str, torch.Tensor]) -> str:
    """The format of a state dict, from its names (see the module's docstring)."""
    keys = list(state)
    if any(k.startswith(("backbone.", "cls_head.")) for k in keys):
        return "mmaction2" if any(_MM_CONVMODULE.search(k) for k in keys) else "official"
    conv1, fc = state.get("conv1.weight"), state.get("fc.weight")
    if (
        conv1 is not None
        and conv1.dim() == 4
        and fc is not None
        and fc.shape[0] == 1000
        and not any(".aggregator." in k for k in keys)
    ):
        return "torchvision"
    return "harness"


_BLOCK = re.compile(r"^(layer\d+\.\d+)\.")


def _rename(path: str, fmt: str, state: dict) -> Weights:
    out = Weights(
        path=path, format=fmt, state={}, source={}, shifted=set() if fmt in ("official", "mmaction2") else None
    )
    for key, value in state.items():
        new = key
        if fmt in ("official", "mmaction2"):
            if fmt == "mmaction2" and key.startswith("data_preprocessor."):  # normalisation constants, not weights
                out.ignored.append(key)
                continue
            new = new.removeprefix("backbone.").replace("cls_head.fc_cls.", "fc.")
            if fmt == "official":
                new = re.sub(r"^(layer\d+\.\d+)\.block\.", r"\1.", new)
                new = re.sub(r"^(layer\d+\.\d+)\.dsa\.generate\.", r"\1.aggregator.kernel_generator.", new)
                renamed = re.sub(r"(^|\.)conv1\.net\.", r"\1conv1.", new)
            else:
                renamed = re.sub(r"(^|\.)conv1\.conv\.net\.", r"\1conv1.conv.", new)
                renamed = re.sub(r"(^|\.)conv(\d+)\.conv\.", r"\1conv\2.", renamed)
                renamed = re.sub(r"(^|\.)conv(\d+)\.bn\.", r"\1bn\2.", renamed)
                renamed = re.sub(r"\.downsample\.conv\.", ".downsample.0.", renamed)
                renamed = re.sub(r"\.downsample\.bn\.", ".downsample.1.", renamed)
            shift = re.search(r"\.conv1\.net\." if fmt == "official" else r"\.conv1\.conv\.net\.", new)
            if shift and (block := _BLOCK.match(new)):  # TSM's shift wraps this block's conv1
                out.shifted.add(block.group(1))
            new = renamed
        if new in out.state:
            raise WeightLoadError(f"{path}: {out.source[new]} and {key} both name {new} in the {FORMAT_NAMES[fmt]}")
        out.state[new] = value
        out.source[new] = key
    return out


# ----------------------------------------------------------------------------------------
# loading


def _inflate(weight: torch.Tensor, target_shape) -> torch.Tensor:
    """2D conv kernel (O, I, k, k) -> 3D (O, I, kt, k, k): repeated over time and divided by kt,
    so a clip of identical frames gives the 2D network's response (away from the clip's ends, where the
    temporal zero padding is seen)."""
    kt = target_shape[2]
    return weight.unsqueeze(2).repeat(1, 1, kt, 1, 1) / kt


def describe_model(model: nn.Module) -> str:
    """``i3d_r50_dsa (400 classes)``: the variant a message names."""
    config = getattr(model, "config", None)
    if config is None:
        return type(model).__name__
    return f"{config.name} ({config.num_classes} classes)"


def apply_weights(model: nn.Module, weights: Weights, *, init: bool = False, what: str = "weights") -> dict:
    """Load ``weights`` into ``model`` (exact, or ``init``: see the module's docstring); returns a summary
    ``{"format", "loaded", "inflated", "new", "skipped", "ignored"}``. Raises :class:`WeightLoadError` naming
    the variant and the first mismatching tensor; the model is unchanged then."""
    own = model.state_dict()
    is_stat = lambda k: k.endswith("num_batches_tracked")  # noqa: E731 - optional in old files, unused by BN
    loaded, inflated, skipped, mismatched = {}, [], [], {}
    for key, value in weights.state.items():
        if key not in own:
            continue
        target = own[key]
        if value.shape != target.shape:
            if (
                weights.format == "torchvision"
                and value.dim() == 4
                and target.dim() == 5
                and value.shape == target.shape[:2] + target.shape[3:]
            ):
                value = _inflate(value, target.shape)
                inflated.append(key)
            elif init and key.startswith("fc."):
                skipped.append(key)
                continue
            else:
                mismatched[key] = (tuple(value.shape), tuple(target.shape))
                continue
        loaded[key] = value.to(target.dtype)
    new = [k for k in own if (".aggregator." in k or k.startswith("fc.")) and k not in weights.state] if init else []
    missing = [k for k in own if k not in loaded and k not in mismatched and k not in skipped and k not in new]
    missing = [k for k in missing if not is_stat(k)]
    unexpected = [k for k in weights.state if k not in own and not is_stat(k)]
    if missing or mismatched or unexpected:
        raise WeightLoadError(_mismatch_line(model, weights, missing, mismatched, unexpected, what))
    if not init and weights.shifted is not None and getattr(model, "layout", None) == "frames":
        _check_shifts(model, weights, what)
    model.load_state_dict(loaded, strict=False)
    return {
        "format": weights.format,
        "loaded": len(loaded),
        "inflated": inflated,
        "new": new,
        "skipped": skipped,
        "ignored": list(weights.ignored),
    }


def _mismatch_line(model, weights: Weights, missing, mismatched, unexpected, what: str) -> str:
    order = {k: i for i, k in enumerate(model.state_dict())}
    first = min([*missing, *mismatched], key=order.__getitem__, default=None)
    if first is None:
        src = weights.source[unexpected[0]]
        ours = f" (our {unexpected[0]})" if src != unexpected[0] else ""
        detail = f"the file's {src}{ours} has no place in the model"
    elif first in mismatched:
        src = weights.source[first]
        ours = f" (our {first})" if src != first else ""
        file_shape, model_shape = mismatched[first]
        detail = f"the file's {src}{ours} is {file_shape}, the model's {model_shape}"
    else:
        detail = f"the model's {first} is not in the file"
    counts = ", ".join(
        f"{n} {word}"
        for n, word in (
            (len(missing), "missing"),
            (len(unexpected), "unexpected"),
            (len(mismatched), "of another shape"),
        )
        if n
    )
    return (
        f"{what}: {weights.path} ({FORMAT_NAMES[weights.format]}) does not fit {describe_model(model)}: "
        f"first mismatch: {detail} ({counts})"
    )


def _check_shifts(model, weights: Weights, what: str) -> None:
    """Official / mmaction2 files of 2-D models say which blocks shift in time: they must be ours."""
    model_shifts = model.config.flavour == "tsm"
    blocks = sorted({m.group(1) for k in model.state_dict() if (m := _BLOCK.match(k))}, key=_block_order)
    for block in blocks:
        in_file = block in weights.shifted
        if in_file != model_shifts:
            why = (
                "the file's block has no temporal shift, the model shifts every block (a TSN file, or a ResNet-101 "
                "TSM of mmaction2, which shifts every other block)"
                if model_shifts
                else "the file's block shifts in time (TSM), the model has no temporal shift"
            )
            raise WeightLoadError(
                f"{what}: {weights.path} ({FORMAT_NAMES[weights.format]}) does not fit {describe_model(model)}: "
                f"first mismatch: block {block}: {why}"
            )


def _block_order(block: str) -> tuple[int, int]:
    stage, index = block.removeprefix("layer").split(".")
    return int(stage), int(index)


def load_checkpoint_into(
    model: nn.Module, path: str | os.PathLike, format: str = "auto", *, init: bool = False, what: str = "weights"
) -> dict:
    """Read ``path`` in ``format`` (``auto``: detected) and load it into ``model``, exactly (or ``init``);
    returns the summary of :func:`apply_weights`."""
    return apply_weights(model, read_weights(path, format, what=what), init=init, what=what)


def load_pretrained(model: nn.Module, path: str | os.PathLike) -> dict:
    """``model.pretrained``: starting weights of any format (detected), loaded as ``init``."""
    return load_checkpoint_into(model, path, "auto", init=True, what="model.pretrained")


def model_from_checkpoint(
    config: ModelConfig, path: str | os.PathLike, format: str = "auto", *, what: str = "checkpoint"
) -> nn.Module:
    """Build ``config``'s model with the class count of the file's classifier and load the file exactly
    (``dsa-harness eval --checkpoint``); ``config.pretrained`` is not read."""
    from harness.models.resnet import VideoResNet  # the model itself: no registry (which imports this module)

    weights = read_weights(path, format, what=what)
    if weights.num_classes is None:
        raise WeightLoadError(
            f"{what}: {path} ({FORMAT_NAMES[weights.format]}) holds no classifier (fc / cls_head.fc_cls): "
            "not the weights of a trained model"
        )
    model = VideoResNet(config.replace(num_classes=weights.num_classes, pretrained=None))
    apply_weights(model, weights, what=what)
    return model


# ----------------------------------------------------------------------------------------
# ImageNet weights for `model.pretrained` (dsa-harness weights imagenet)


def torchvision_layout(arch: str) -> dict[str, tuple[int, ...]]:
    """Names and shapes of torchvision's ``arch`` (e.g. ``resnet50``) state dict, from our 2-D ResNet with a
    1000-way classifier (its names are torchvision's), ``num_batches_tracked`` left out (old files lack it)."""
    from harness.models.config import ModelConfig
    from harness.models.resnet import VideoResNet

    model = VideoResNet(ModelConfig(name=arch, flavour="tsn", depth=IMAGENET_ARCHS[arch], num_classes=1000))
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


def _torchvision_state(arch: str) -> dict:
    """torchvision's IMAGENET1K_V1 weights of ``arch`` (the weights ``pretrained=True`` gave, which the
    DSANet and TSM code bases start from), downloaded through torchvision into its cache."""
    try:
        import torchvision
    except ImportError:
        raise WeightLoadError(
            f"torchvision is not installed, so {arch}'s ImageNet weights cannot be downloaded here: install it "
            f"(pip install torchvision, the build matching torch) on a machine with internet access, or give "
            f"--from FILE, torchvision's {arch} state dict downloaded elsewhere (IMAGENET1K_V1, e.g. "
            f"download.pytorch.org/models/{_V1_FILES[arch]})"
        ) from None
    weights = torchvision.models.get_weight(f"{_ENUMS[arch]}.IMAGENET1K_V1")
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as e:  # noqa: BLE001 - no network, proxy, hash: all say the same thing to the user
        raise WeightLoadError(
            f"could not download {arch}'s ImageNet weights through torchvision ({type(e).__name__}: "
            f"{str(e).strip()[:200]}): give --from FILE, torchvision's {arch} state dict downloaded elsewhere "
            f"({weights.url})"
        ) from e


_ENUMS = {arch: f"ResNet{depth}_Weights" for arch, depth in IMAGENET_ARCHS.items()}  # torchvision's weight enums
_V1_FILES = {
    "resnet18": "resnet18-f37072fd.pth",
    "resnet34": "resnet34-b627a593.pth",
    "resnet50": "resnet50-0676ba61.pth",
    "resnet101": "resnet101-63fe2227.pth",
}


def write_imagenet_weights(
    arch: str, out: str | os.PathLike, *, source: str | os.PathLike | None = None, force: bool = False
) -> dict:
    """Write the ImageNet-initialised weights file of ``arch`` that ``model.pretrained`` takes (the grids'
    ``data/pretrained/resnet50_imagenet.pth``): torchvision's state dict, checked name by name and shape by
    shape against torchvision's layout of ``arch``, saved as float32 tensors (``torch.save``, atomically).
    From ``source`` (a local torchvision ``.pth``) or downloaded through torchvision. Refuses an existing
    ``out`` unless ``force``. Returns ``{"arch", "out", "source", "tensors", "params_m", "sha256"}``."""
    import io

    import torch

    from harness.results.rundir import atomic_write_bytes

    if arch not in IMAGENET_ARCHS:
        raise UsageError(f"--arch {arch!r}: unknown; archs: {', '.join(IMAGENET_ARCHS)}")
    if os.path.exists(out) and not force:
        raise UsageError(f"--out {out} exists; --force to overwrite it")
    if source is not None:
        what, origin = "--from", str(source)
        state = read_weights(source, "torchvision", what=what).state  # the file's own names
    else:
        what, origin = "torchvision", f"torchvision {arch} IMAGENET1K_V1"
        state = dict(_torchvision_state(arch))
    layout = torchvision_layout(arch)
    for key, shape in layout.items():
        if key not in state:
            raise WeightLoadError(
                f"{what}: {origin} is not torchvision's {arch}: first mismatch at {key}: not in the file"
            )
        if tuple(state[key].shape) != shape:
            raise WeightLoadError(
                f"{what}: {origin} is not torchvision's {arch}: first mismatch at {key}: the file's is "
                f"{tuple(state[key].shape)}, {arch}'s {shape}"
            )
    extra = [k for k in state if k not in layout and not k.endswith("num_batches_tracked")]
    if extra:
        raise WeightLoadError(
            f"{what}: {origin} is not torchvision's {arch}: first mismatch at {extra[0]}: not in {arch}"
        )
    clean = {k: v.detach().to(torch.float32).contiguous() for k, v in state.items() if k in layout}
    buffer = io.BytesIO()
    torch.save(clean, buffer)
    data = buffer.getvalue()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, data)
    return {
        "arch": arch,
        "out": str(out),
        "source": origin,
        "tensors": len(clean),
        "params_m": sum(v.numel() for k, v in clean.items() if "running_" not in k) / 1e6,
        "sha256": hashlib.sha256(data).hexdigest(),
    }
