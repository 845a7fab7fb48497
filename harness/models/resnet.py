"""ResNet-18/34/50/101 for video, one code path in three flavours (spec section 4).

- ``tsn``: 2D ResNet over frames, features (N*U*T, C, H, W); no temporal modelling inside a snippet.
- ``tsm``: ``tsn`` + the residual temporal shift (1/shift_div of the channels one frame back, as many one
  frame forward, within each snippet's T frames, zero padded) before conv1 of every block's branch.
- ``i3d``: 3D ResNet over clips, features (N*U, C, T, H, W); conv1 1x7x7; no temporal stride anywhere;
  bottleneck conv1 inflated to 3x1x1 in res4/res5 (basic blocks: conv1 3x3x3 there).

A cross-snippet aggregator (DSA, static conv, non-local) sits in chosen blocks at a chosen position:
``res`` (branch input, before conv1), ``res_2`` (after conv1-BN-ReLU), ``res_3`` (after conv2-BN-ReLU;
basic blocks: after conv2-BN), ``res_4`` (bottleneck only: after conv3-BN, before the addition),
``bottom`` (after the final ReLU, input added back).

Model input: float (N, U, 3, T, H, W). ``forward`` returns logits (N, num_classes), the mean of the
snippet logits; ``forward_snippets`` returns (N, U, num_classes). Parameter names follow torchvision's
ResNet (conv1, bn1, layer1..4, fc) so ImageNet weights load by name.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from harness.models.aggregators import build_aggregator
from harness.models.config import STAGE_NAMES, ModelConfig, aggregator_channels, is_bottleneck, stage_width
from harness.models.shift import temporal_shift


@contextlib.contextmanager
def _frozen_bn_stats(module: nn.Module):
    """While active, the BatchNorm layers of ``module`` run as usual (batch statistics in training),
    and on exit their running statistics and batch counters are put back as they were: the context of
    an activation checkpoint's recomputation, so that recomputing a stage does not count its batch twice."""
    buffers = [
        b
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        for b in (m.running_mean, m.running_var, m.num_batches_tracked)
        if b is not None
    ]
    saved = [b.clone() for b in buffers]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, v in zip(buffers, saved):
                b.copy_(v)


class _Ops:
    """Conv / BN / pooling factories of one flavour."""

    def __init__(self, flavour: str):
        self.three_d = flavour == "i3d"
        self.layout = "clips" if self.three_d else "frames"

    def conv(self, cin: int, cout: int, k: int, stride: int = 1, kt: int = 1) -> nn.Module:
        if self.three_d:
            return nn.Conv3d(
                cin, cout, (kt, k, k), stride=(1, stride, stride), padding=(kt // 2, k // 2, k // 2), bias=False
            )
        return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)

    def bn(self, c: int) -> nn.Module:
        return nn.BatchNorm3d(c) if self.three_d else nn.BatchNorm2d(c)

    def maxpool(self) -> nn.Module:
        if self.three_d:
            return nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        return nn.MaxPool2d(3, stride=2, padding=1)


class _Block(nn.Module):
    """Shared forward of basic and bottleneck blocks: shift, aggregator at its position, residual."""

    expansion = 1
    convs: tuple[str, ...] = ()

    def __init__(self, aggregator: nn.Module | None, position: str, shift_div: int | None, num_frames: int):
        super().__init__()
        self.aggregator = aggregator
        self.position = position
        self.shift_div = shift_div
        self.num_frames = num_frames
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None

    def _agg(self, x: torch.Tensor, at: str) -> torch.Tensor:
        return self.aggregator(x) if self.aggregator is not None and self.position == at else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self._agg(x, "res")
        if self.shift_div:
            out = temporal_shift(out, self.num_frames, self.shift_div)
        names = self.convs
        for i, name in enumerate(names):
            out = getattr(self, f"bn{i + 1}")(getattr(self, name)(out))
            if i < len(names) - 1:
                out = self.relu(out)
                out = self._agg(out, f"res_{i + 2}")
        out = self._agg(out, f"res_{len(names) + 1}")
        out = self.relu(out + identity)
        return self._agg(out, "bottom")


class BasicBlock(_Block):
    expansion = 1
    convs = ("conv1", "conv2")

    def __init__(self, ops: _Ops, cin: int, width: int, stride: int, kt: int, **kw):
        super().__init__(**kw)
        self.conv1 = ops.conv(cin, width, 3, stride, kt=kt)
        self.bn1 = ops.bn(width)
        self.conv2 = ops.conv(width, width, 3)
        self.bn2 = ops.bn(width)


class Bottleneck(_Block):
    expansion = 4
    convs = ("conv1", "conv2", "conv3")

    def __init__(self, ops: _Ops, cin: int, width: int, stride: int, kt: int, **kw):
        super().__init__(**kw)
        self.conv1 = ops.conv(cin, width, 1, kt=kt)
        self.bn1 = ops.bn(width)
        self.conv2 = ops.conv(width, width, 3, stride)
        self.bn2 = ops.bn(width)
        self.conv3 = ops.conv(width, width * 4, 1)
        self.bn3 = ops.bn(width * 4)


class VideoResNet(nn.Module):
    """A TSN/TSM/I3D ResNet with optional cross-snippet aggregators. Build with ``VideoResNet(config)``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        ops = _Ops(config.flavour)
        self.layout = ops.layout
        block_cls = Bottleneck if is_bottleneck(config.depth) else BasicBlock
        w0 = config.width
        self.conv1 = (
            nn.Conv3d(3, w0, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False)
            if ops.three_d
            else nn.Conv2d(3, w0, 7, stride=2, padding=3, bias=False)
        )
        self.bn1 = ops.bn(w0)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = ops.maxpool()

        cin = w0
        # the TSM reference (and DSANet's ResNetTSM) shift every block, but every other block (n_round = 2,
        # blocks 0, 2, 4, ... of every stage) in deep nets whose res4 has >= 23 blocks: ResNet-101 shifts 18 of 33
        shift_round = 2 if max(config.stage_blocks) >= 23 else 1
        for s, (n_blocks, mask) in enumerate(zip(config.stage_blocks, config.stage_masks)):
            width = stage_width(config, s)
            stage_channels = aggregator_channels(config, STAGE_NAMES[s])  # (first block, other blocks)
            cout = width * block_cls.expansion
            inflate = ops.three_d and s >= 2  # res4, res5
            kt = 3 if inflate else 1  # bottleneck conv1 -> 3x1x1, basic conv1 -> 3x3x3
            blocks = []
            for b in range(n_blocks):
                stride = 2 if (b == 0 and s > 0) else 1
                aggregator = None
                if config.aggregator != "avg" and mask[b]:
                    aggregator = build_aggregator(
                        config.aggregator,
                        stage_channels[0 if b == 0 else 1],
                        num_snippets=config.num_snippets,
                        num_frames=config.num_frames,
                        split_ratio=config.split_ratio,
                        alpha=config.alpha,
                        kernel_size=config.kernel_size,
                        with_identity=config.with_identity or config.position == "bottom",
                        layout=ops.layout,
                    )
                block = block_cls(
                    ops,
                    cin,
                    width,
                    stride,
                    kt,
                    aggregator=aggregator,
                    position=config.position,
                    shift_div=config.shift_div if config.flavour == "tsm" and b % shift_round == 0 else None,
                    num_frames=config.num_frames,
                )
                if stride != 1 or cin != cout:
                    block.downsample = nn.Sequential(ops.conv(cin, cout, 1, stride), ops.bn(cout))
                blocks.append(block)
                cin = cout
            self.add_module(f"layer{s + 1}", nn.Sequential(*blocks))
        self.feature_dim = cin
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(cin, config.num_classes)
        self.channels_last = False
        self.checkpoint_stages: tuple[str, ...] = ()
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():  # zero-init the last BN of each branch: blocks start as identities
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)
            elif isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    # ------------------------------------------------------------------------------
    def aggregator_modules(self) -> list[nn.Module]:
        return [m.aggregator for m in self.modules() if isinstance(m, _Block) and m.aggregator is not None]

    @property
    def memory_format(self) -> torch.memory_format:
        """The layout this model's features use: channels_last(_3d) after ``set_channels_last()``."""
        if not self.channels_last:
            return torch.contiguous_format
        return torch.channels_last_3d if self.layout == "clips" else torch.channels_last

    def set_channels_last(self, enabled: bool = True) -> VideoResNet:
        """Convert the weights, and every input from then on, to channels_last (TSN/TSM) or
        channels_last_3d (I3D); the shift and the aggregators keep that layout, so no block converts.
        Outputs equal the ordinary layout's up to the convolutions' rounding."""
        self.channels_last = enabled
        return self.to(memory_format=self.memory_format)

    def set_activation_checkpointing(self, stages) -> VideoResNet:
        """Recompute the activations of the given stages (names of ``STAGE_NAMES``, res2..res5) in the
        backward pass instead of keeping them (``torch.utils.checkpoint``, non-reentrant): less memory
        in training, one more forward of those stages; the same outputs, gradients and BatchNorm
        running statistics (the recomputation does not update them a second time)."""
        stages = tuple(stages)
        unknown = [s for s in stages if s not in STAGE_NAMES]
        if unknown:
            raise ValueError(f"activation checkpointing: unknown stage(s) {unknown}; stages are {STAGE_NAMES}")
        self.checkpoint_stages = tuple(s for s in STAGE_NAMES if s in stages)
        return self

    def _run_stage(self, index: int, x: torch.Tensor) -> torch.Tensor:
        layer = getattr(self, f"layer{index + 1}")
        if STAGE_NAMES[index] not in self.checkpoint_stages or not (self.training and torch.is_grad_enabled()):
            return layer(x)
        from torch.utils.checkpoint import checkpoint

        if torch.compiler.is_compiling():  # compiled: the backward graph recomputes; buffers update once
            return checkpoint(layer, x, use_reentrant=False)
        return checkpoint(
            layer, x, use_reentrant=False, context_fn=lambda: (contextlib.nullcontext(), _frozen_bn_stats(layer))
        )

    def to_backbone_layout(self, x: torch.Tensor) -> torch.Tensor:
        """(N, U, C, T, H, W) -> (N*U, C, T, H, W) for I3D, (N*U*T, C, H, W) for TSN/TSM, in
        :attr:`memory_format` (one copy either way)."""
        if x.dim() != 6:
            raise ValueError(f"expected input (N, U, C, T, H, W), got shape {tuple(x.shape)}")
        n, u, c, t, h, w = x.shape
        if u != self.config.num_snippets or t != self.config.num_frames:
            raise ValueError(
                f"input has U={u}, T={t}; this model was built for U={self.config.num_snippets}, "
                f"T={self.config.num_frames}"
            )
        if self.layout == "clips":
            return x.reshape(n * u, c, t, h, w).contiguous(memory_format=self.memory_format)
        if self.channels_last:  # (N*U*T, H, W, C) in memory: one copy
            return x.permute(0, 1, 3, 4, 5, 2).reshape(n * u * t, h, w, c).permute(0, 3, 1, 2)
        return x.transpose(2, 3).reshape(n * u * t, c, h, w)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, U, C, T, H, W) -> pooled features (N, U, D)."""
        n, u = x.shape[:2]
        x = self.to_backbone_layout(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for index in range(len(STAGE_NAMES)):
            x = self._run_stage(index, x)
        if self.layout == "clips":  # (N*U, D, T, H, W)
            return x.mean(dim=(2, 3, 4)).reshape(n, u, -1)
        # (N*U*T, D, H, W): average frames too (the TSN/TSM consensus inside a snippet)
        return x.mean(dim=(2, 3)).reshape(n, u, -1, x.shape[1]).mean(dim=2)

    def forward_snippets(self, x: torch.Tensor) -> torch.Tensor:
        """(N, U, C, T, H, W) -> snippet logits (N, U, num_classes)."""
        return self.fc(self.dropout(self.forward_features(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, U, C, T, H, W) -> video logits (N, num_classes): mean over the U snippets."""
        return self.forward_snippets(x).mean(dim=1)
