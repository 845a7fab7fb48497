"""Cross-snippet aggregators: DSA (the paper's module), a static convolution, non-local attention.

All aggregators share one interface so that the backbone inserts any of them at any position:

    forward(x) -> same shape and memory format as x (channels_last stays channels_last), where x is
    the backbone's own layout:
        I3D:      (N*U, C, T, H, W)   the U snippets of a video consecutive
        TSN/TSM:  (N*U*T, C, H, W)    the T frames of a snippet consecutive, snippets of a video consecutive

Only the first ``C' = int(C * split_ratio)`` channels are aggregated; the others pass unchanged.
Internally every aggregator views the split channels as ``(N, C', U, S)`` with S = T*H*W, mixes along
U, and writes back. Nothing loops over videos or channels; DSA loops only over nothing at all (one
grouped convolution), the static convolution likewise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SnippetAggregator(nn.Module):
    """Base class: channel split and the (backbone layout) <-> (N, C', U, S) views."""

    def __init__(
        self,
        channels: int,
        num_snippets: int,
        num_frames: int,
        split_ratio: float,
        layout: str,
        with_identity: bool = False,
    ):
        super().__init__()
        if layout not in ("clips", "frames"):
            raise ValueError(f"layout={layout!r} is invalid: allowed: clips (I3D), frames (TSN/TSM)")
        self.channels = channels
        self.split_channels = int(channels * split_ratio)
        if self.split_channels < 1:
            raise ValueError(
                f"split_ratio={split_ratio} leaves 0 of {channels} channels for aggregation; use a larger ratio"
            )
        self.num_snippets = num_snippets
        self.num_frames = num_frames
        self.layout = layout
        self.with_identity = with_identity

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, split={self.split_channels}, U={self.num_snippets}, "
            f"layout={self.layout}, with_identity={self.with_identity}"
        )

    # layout helpers -------------------------------------------------------------------
    def to_snippets(self, x: torch.Tensor) -> torch.Tensor:
        """Split channels of ``x`` (backbone layout) -> (N, C', U, S), contiguous."""
        U, c = self.num_snippets, self.split_channels
        if self.layout == "clips":  # (N*U, C, T, H, W)
            nu = x.shape[0]
            s = x[:, :c].reshape(nu // U, U, c, -1)  # (N, U, C', S)
            return s.transpose(1, 2).contiguous()
        nut, _, h, w = x.shape  # (N*U*T, C, H, W)
        T = self.num_frames
        s = x[:, :c].reshape(nut // (U * T), U, T, c, h * w)  # (N, U, T, C', HW)
        # contiguous whatever the input's memory format (a channels_last input would give a strided view
        # here): the aggregation then computes on the same values in the same order, bit for bit
        return s.permute(0, 3, 1, 2, 4).reshape(nut // (U * T), c, U, T * h * w).contiguous()

    def from_snippets(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(N, C', U, S) aggregated channels + untouched channels of ``x`` -> backbone layout, in the
        memory format of ``x``: a channels_last (I3D: channels_last_3d) input gives a channels_last
        output with the same values, written by the same one copy as the ordinary layout."""
        n, c, U, _ = y.shape
        fmt = torch.channels_last_3d if x.dim() == 5 else torch.channels_last
        channels_last = not x.is_contiguous() and x.is_contiguous(memory_format=fmt)
        if self.layout == "clips":
            if channels_last:  # (N*U, T, H, W, C') in memory
                y = y.permute(0, 2, 3, 1).reshape(n * U, *x.shape[2:], c).permute(0, 4, 1, 2, 3)
            else:
                y = y.transpose(1, 2).reshape(n * U, c, *x.shape[2:])
        else:
            T = self.num_frames
            h, w = x.shape[2:]
            if channels_last:  # (N*U*T, H, W, C') in memory
                y = y.reshape(n, c, U, T * h * w).permute(0, 2, 3, 1).reshape(n * U * T, h, w, c).permute(0, 3, 1, 2)
            else:
                y = y.reshape(n, c, U, T, h * w).permute(0, 2, 3, 1, 4).reshape(n * U * T, c, h, w)
        out = y if c == x.shape[1] else torch.cat([y, x[:, c:]], dim=1)
        # a no-op but where C' = 1 (then y counts as either layout, and cat may pick the ordinary one)
        return out.contiguous(memory_format=fmt) if channels_last else out

    def pooled(self, s: torch.Tensor) -> torch.Tensor:
        """(N, C', U, S) -> (N, C', U): global average over T, H, W of each snippet."""
        return s.mean(dim=3)

    def check_batch(self, x: torch.Tensor) -> None:
        group = self.num_snippets * (self.num_frames if self.layout == "frames" else 1)
        if x.shape[0] % group:
            raise ValueError(
                f"{type(self).__name__}: batch dimension {x.shape[0]} is not a multiple of "
                f"{'U*T' if self.layout == 'frames' else 'U'} = {group}"
            )


class DynamicSegmentAggregation(SnippetAggregator):
    """The DSA module (DSANet, spec section 2).

    For every (video, channel) of the split, the U-long vector of pooled snippet features goes
    through Linear(U -> U*alpha) -> BatchNorm1d -> ReLU -> Linear(U*alpha -> K) -> softmax, giving a
    positive K-tap kernel that sums to 1; the kernel is applied as a 1-D convolution along the snippet
    axis (zero padding (K-1)/2, same kernel at every t, h, w) — one grouped ``conv2d`` with N*C'
    groups. With ``with_identity`` (and always at position ``bottom``) the input is added back.

    Parameters: U*U*alpha + 2*U*alpha + U*alpha*K (BatchNorm running statistics are buffers).
    """

    def __init__(
        self,
        channels: int,
        num_snippets: int,
        num_frames: int,
        *,
        split_ratio: float = 0.125,
        alpha: int = 2,
        kernel_size: int = 3,
        with_identity: bool = False,
        layout: str = "clips",
    ):
        super().__init__(channels, num_snippets, num_frames, split_ratio, layout, with_identity)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size={kernel_size} is invalid: must be odd")
        U, hidden = num_snippets, num_snippets * alpha
        self.kernel_size = kernel_size
        self.kernel_generator = nn.Sequential(
            nn.Linear(U, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, kernel_size, bias=False),
        )

    def generate_kernels(self, pooled: torch.Tensor) -> torch.Tensor:
        """(N, C', U) pooled features -> (N, C', K) kernels, positive, summing to 1 over K."""
        n, c, U = pooled.shape
        logits = self.kernel_generator(pooled.reshape(n * c, U))
        return F.softmax(logits, dim=-1).reshape(n, c, self.kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_batch(x)
        s = self.to_snippets(x)  # (N, C', U, S)
        n, c, U, S = s.shape
        kernels = self.generate_kernels(self.pooled(s))  # (N, C', K)
        pad = (self.kernel_size - 1) // 2
        y = F.conv2d(
            s.reshape(1, n * c, U, S),
            kernels.reshape(n * c, 1, self.kernel_size, 1),
            padding=(pad, 0),
            groups=n * c,
        ).reshape(n, c, U, S)
        if self.with_identity:
            y = y + s
        return self.from_snippets(y, x)


class StaticSnippetConv(SnippetAggregator):
    """A learned K-tap depthwise convolution across snippets, the same for every video.

    Weights (C', K), initialised to the identity (centre tap 1), zero padding (K-1)/2.
    """

    def __init__(
        self,
        channels: int,
        num_snippets: int,
        num_frames: int,
        *,
        split_ratio: float = 0.125,
        kernel_size: int = 3,
        with_identity: bool = False,
        layout: str = "clips",
        **_: object,
    ):
        super().__init__(channels, num_snippets, num_frames, split_ratio, layout, with_identity)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size={kernel_size} is invalid: must be odd")
        self.kernel_size = kernel_size
        weight = torch.zeros(self.split_channels, 1, kernel_size, 1)
        weight[:, 0, kernel_size // 2, 0] = 1.0
        self.weight = nn.Parameter(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_batch(x)
        s = self.to_snippets(x)  # (N, C', U, S)
        y = F.conv2d(s, self.weight, padding=((self.kernel_size - 1) // 2, 0), groups=self.split_channels)
        if self.with_identity:
            y = y + s
        return self.from_snippets(y, x)


class SnippetNonLocal(SnippetAggregator):
    """Embedded-Gaussian attention across the U snippets of a video.

    Resolution: the attention map (N, U, U) is computed at *snippet* resolution — each snippet's
    split channels pooled over T, H, W to a C'-vector, embedded by theta/phi (C' -> max(C'/2, 1)) —
    and applied to the *full-resolution* features: y_u = sum_j softmax_j(theta(p_u) . phi(p_j)) x_j.
    Output x + gamma * y, with a per-channel gamma initialised at 0 (the role of the zero-initialised
    BatchNorm of the original non-local block: the module starts as the identity).

    Order-blind: there is no position encoding, so the block is equivariant to permuting the snippets,
    and with the mean over snippet scores the video's prediction cannot tell "A then B" from "B then A"
    (tested; on the synthetic set's order classes it stays at chance while DSA and the static conv,
    whose kernel taps know u-1 from u+1, learn them).
    """

    def __init__(
        self,
        channels: int,
        num_snippets: int,
        num_frames: int,
        *,
        split_ratio: float = 0.125,
        layout: str = "clips",
        **_: object,
    ):
        super().__init__(channels, num_snippets, num_frames, split_ratio, layout, with_identity=True)
        c = self.split_channels
        inner = max(c // 2, 1)
        self.theta = nn.Linear(c, inner, bias=False)
        self.phi = nn.Linear(c, inner, bias=False)
        self.gamma = nn.Parameter(torch.zeros(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_batch(x)
        s = self.to_snippets(x)  # (N, C', U, S)
        n, c, U, S = s.shape
        p = self.pooled(s).transpose(1, 2)  # (N, U, C')
        attention = torch.softmax(torch.bmm(self.theta(p), self.phi(p).transpose(1, 2)), dim=-1)  # (N, U, U)
        y = torch.matmul(attention.unsqueeze(1), s)  # (N, 1, U, U) @ (N, C', U, S) -> (N, C', U, S)
        y = s + self.gamma.view(1, c, 1, 1) * y
        return self.from_snippets(y, x)


AGGREGATOR_CLASSES = {
    "dsa": DynamicSegmentAggregation,
    "static_conv": StaticSnippetConv,
    "nonlocal": SnippetNonLocal,
}


def build_aggregator(
    kind: str,
    channels: int,
    *,
    num_snippets: int,
    num_frames: int,
    split_ratio: float,
    alpha: int,
    kernel_size: int,
    with_identity: bool,
    layout: str,
) -> nn.Module:
    """Aggregator ``kind`` for ``channels`` input channels, in the backbone's ``layout``."""
    if kind not in AGGREGATOR_CLASSES:
        raise ValueError(f"aggregator={kind!r} is invalid: allowed: {', '.join(AGGREGATOR_CLASSES)}")
    return AGGREGATOR_CLASSES[kind](
        channels,
        num_snippets,
        num_frames,
        split_ratio=split_ratio,
        alpha=alpha,
        kernel_size=kernel_size,
        with_identity=with_identity,
        layout=layout,
    )
