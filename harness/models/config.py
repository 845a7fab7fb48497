"""Model configuration: one frozen dataclass, validated on construction.

A value travels one way: grid / CLI -> ``ModelConfig`` -> builder -> the module that uses it.
A bad value raises :class:`harness.errors.ConfigError` (a ValueError) naming the field.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from harness.errors import ConfigError

FLAVOURS = ("tsn", "tsm", "i3d")
"""``tsn``: 2D ResNet over N*U*T frames, no temporal modelling inside a snippet;
``tsm``: the same with the residual temporal shift; ``i3d``: 3D ResNet over N*U clips."""

AGGREGATORS = ("dsa", "avg", "static_conv", "nonlocal")
"""Cross-snippet aggregators. ``avg`` inserts nothing: snippets meet only in the final
average of their scores (the TSN consensus)."""

BOTTLENECK_POSITIONS = ("res", "res_2", "res_3", "res_4", "bottom")
BASIC_POSITIONS = ("res", "res_2", "res_3", "bottom")
POSITION_ALIASES = {"res_1": "res"}

STAGE_DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
BOTTLENECK_DEPTHS = (50, 101)
STAGE_NAMES = ("res2", "res3", "res4", "res5")


def is_bottleneck(depth: int) -> bool:
    return depth in BOTTLENECK_DEPTHS


def paper_stage_masks(depth: int) -> tuple[tuple[int, ...], ...]:
    """DSANet default placement: every other block (#2, #4, ...) of res3 and res4, none in res2/res5.

    For ResNet-50 this is (0,0,0), (0,1,0,1), (0,1,0,1,0,1), (0,0,0) (spec section 3).
    """
    blocks = STAGE_DEPTHS[depth]
    return tuple(tuple(int(s in (1, 2) and b % 2 == 1) for b in range(n)) for s, n in enumerate(blocks))


def normalize_stage_masks(value: Any, depth: int) -> tuple[tuple[int, ...], ...]:
    """Accept the ways a grid or CLI writes stage masks and return 4 tuples of 0/1.

    Accepted: ``"paper"``; ``"none"``; ``"all"``; a dict ``{"res3": [0, 1, 0, 1], "res4": "all"}``
    (missing stages get no block); a string ``"res3:0101,res4:all"``; or a sequence of 4 entries,
    each ``"all"``, ``"none"``, a bool/0/1 (all or none), or a 0/1 sequence of the stage's block count.
    Raises :class:`ConfigError` (a ValueError) naming ``stage_masks`` for anything else.
    """
    blocks = STAGE_DEPTHS[depth]
    if value is None or value == "paper":
        return paper_stage_masks(depth)
    hint = "write e.g. 'res3:0101,res4:all', 'paper', 'all' or 'none'"
    if isinstance(value, str):
        if value in ("none", "all"):
            value = [value] * 4
        else:
            spec: dict[str, Any] = {}
            for part in value.split(","):
                name, _, mask = part.strip().partition(":")
                mask = mask.strip()
                if not mask or not (mask in ("all", "none") or set(mask) <= set("0123456789")):
                    raise ConfigError(f"stage_masks: cannot read {part!r}; {hint}")
                spec[name.strip()] = mask if mask in ("all", "none") else [int(c) for c in mask]
            value = spec
    if isinstance(value, dict):
        unknown = set(value) - set(STAGE_NAMES)
        if unknown:
            raise ConfigError(f"stage_masks: unknown stage(s) {sorted(unknown, key=str)}; stages are {STAGE_NAMES}")
        value = [value.get(name, "none") for name in STAGE_NAMES]
    try:
        value = list(value)
    except TypeError:
        raise ConfigError(f"stage_masks: cannot read {value!r}; {hint}") from None
    if len(value) != 4:
        raise ConfigError(f"stage_masks: need 4 stages (res2..res5), got {len(value)}")
    out = []
    for name, n, entry in zip(STAGE_NAMES, blocks, value):
        if entry in ("all", True) or (isinstance(entry, int) and not isinstance(entry, bool) and entry == 1):
            out.append((1,) * n)
        elif entry in ("none", False, None) or (isinstance(entry, int) and entry == 0):
            out.append((0,) * n)
        else:
            try:
                mask = tuple(int(v) for v in entry)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"stage_masks: {name} mask {entry!r} must be 'all', 'none' or a 0/1 sequence of its {n} blocks"
                ) from None
            if len(mask) != n:
                raise ConfigError(f"stage_masks: {name} of ResNet-{depth} has {n} blocks, mask {mask} has {len(mask)}")
            if any(v not in (0, 1) for v in mask):
                raise ConfigError(f"stage_masks: {name} mask {mask} must hold only 0 and 1")
            out.append(mask)
    return tuple(out)


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a model variant. Frozen; validated in ``__post_init__``.

    Input of the built model: float tensor (N, U, C=3, T, H, W); output: logits (N, num_classes).
    """

    name: str = "custom"
    flavour: str = "tsm"
    depth: int = 50
    width: int = 64  # channels of the stem; 64 is the standard ResNet, smaller is for CPU studies
    num_classes: int = 400
    num_snippets: int = 4  # U
    num_frames: int = 8  # T, frames per snippet
    aggregator: str = "avg"
    position: str = "res_2"
    stage_masks: tuple = field(default="paper")  # normalised to 4 tuples of 0/1
    split_ratio: float = 0.125
    alpha: int = 2
    kernel_size: int = 3
    with_identity: bool = False
    shift_div: int = 8  # TSM: 1/shift_div of the channels shifted each way
    dropout: float = 0.5
    pretrained: str | None = None  # starting weights: torchvision ImageNet, harness, official DSANet or mmaction2 file

    def __post_init__(self) -> None:
        def bad(name: str, allowed: str) -> ConfigError:
            return ConfigError(f"{name}={getattr(self, name)!r} is invalid: {allowed}")

        def is_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        def is_number(v: Any) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool)

        if not isinstance(self.flavour, str) or self.flavour not in FLAVOURS:
            raise bad("flavour", f"allowed: {', '.join(FLAVOURS)}")
        if not is_int(self.depth) or self.depth not in STAGE_DEPTHS:
            raise bad("depth", f"allowed: {', '.join(map(str, STAGE_DEPTHS))}")
        for name in ("width", "num_classes", "num_snippets", "num_frames", "alpha", "kernel_size", "shift_div"):
            v = getattr(self, name)
            if not is_int(v) or v < 1:
                raise bad(name, "must be an integer >= 1")
        if not isinstance(self.aggregator, str) or self.aggregator not in AGGREGATORS:
            raise bad("aggregator", f"allowed: {', '.join(AGGREGATORS)}")
        allowed_pos = BOTTLENECK_POSITIONS if is_bottleneck(self.depth) else BASIC_POSITIONS
        if not isinstance(self.position, str):
            raise bad("position", f"allowed for ResNet-{self.depth}: {', '.join(allowed_pos)}")
        position = POSITION_ALIASES.get(self.position, self.position)
        if position not in allowed_pos:
            raise bad("position", f"allowed for ResNet-{self.depth}: {', '.join(allowed_pos)}")
        object.__setattr__(self, "position", position)
        if self.kernel_size % 2 == 0:
            raise bad("kernel_size", "must be odd (padding (K-1)/2 keeps U snippets)")
        if not is_number(self.split_ratio) or not 0 < self.split_ratio <= 1:
            raise bad("split_ratio", "must be in (0, 1]")
        if not is_number(self.dropout) or not 0 <= self.dropout < 1:
            raise bad("dropout", "must be in [0, 1)")
        if self.pretrained is not None and not isinstance(self.pretrained, (str, os.PathLike)):
            raise bad("pretrained", "must be the path of a weights file, or null")
        object.__setattr__(self, "stage_masks", normalize_stage_masks(self.stage_masks, self.depth))
        object.__setattr__(self, "with_identity", bool(self.with_identity))
        if self.aggregator != "avg":
            for stage, mask in zip(STAGE_NAMES, self.stage_masks):
                if any(mask):
                    channels = min(aggregator_channels(self, stage))
                    if int(channels * self.split_ratio) < 1:
                        raise bad(
                            "split_ratio",
                            f"leaves 0 channels at {stage} ({channels} channels x {self.split_ratio})",
                        )

    # ------------------------------------------------------------------------------
    @property
    def stage_blocks(self) -> tuple[int, ...]:
        return STAGE_DEPTHS[self.depth]

    @property
    def inserts(self) -> bool:
        """True if any block gets a cross-snippet aggregator."""
        return self.aggregator != "avg" and any(any(m) for m in self.stage_masks)

    def replace(self, **overrides: Any) -> ModelConfig:
        unknown = set(overrides) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(
                f"unknown model option(s) {sorted(unknown)}; options: {', '.join(f.name for f in fields(self))}"
            )
        return replace(self, **overrides)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stage_masks"] = [list(m) for m in self.stage_masks]
        return d


def stage_width(config: ModelConfig, stage_index: int) -> int:
    """Bottleneck width (or basic-block width) of stage 0..3."""
    return config.width * 2**stage_index


def aggregator_channels(config: ModelConfig, stage: str) -> tuple[int, int]:
    """Channels C seen by an aggregator at ``config.position`` in the blocks of ``stage``.

    Returns (C of the first block, C of the other blocks): the first block of a stage may see
    the previous stage's output at position ``res``.
    """
    s = STAGE_NAMES.index(stage)
    w = stage_width(config, s)
    expansion = 4 if is_bottleneck(config.depth) else 1
    out = w * expansion
    if config.position == "res":
        first_in = config.width if s == 0 else stage_width(config, s - 1) * expansion
        return (first_in, out)
    if config.position in ("res_4", "bottom"):
        return (out, out)
    if config.position == "res_3" and not is_bottleneck(config.depth):
        return (out, out)
    return (w, w)
