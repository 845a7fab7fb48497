"""The TSM temporal shift (residual, "blockres"), strictly within each snippet."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def temporal_shift(x: torch.Tensor, num_frames: int, shift_div: int = 8) -> torch.Tensor:
    """Shift 1/shift_div of the channels one frame back and as many one frame forward.

    x: (N*U*T, C, H, W) with the T frames of each snippet consecutive. Channels [0, C/d) of frame t
    take frame t+1's values, channels [C/d, 2C/d) take frame t-1's; zeros where a snippet ends, so
    nothing ever crosses from one snippet (or video) to the next. The other channels are unchanged.
    Returns a new tensor of the same shape and memory format: a channels_last input gives a
    channels_last output (the same values), so a channels_last network converts no layout here.
    """
    nt, c, h, w = x.shape
    if nt % num_frames:
        raise ValueError(f"temporal_shift: batch {nt} is not a multiple of T={num_frames}")
    fold = c // shift_div
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        # channels_last: (N*U*T, H, W, C) in memory; shift along frames, channels the last dimension
        y = _shift(x.permute(0, 2, 3, 1).view(nt // num_frames, num_frames, h, w, c), fold, channel_dim=4)
        return y.view(nt, h, w, c).permute(0, 3, 1, 2)
    return _shift(x.view(nt // num_frames, num_frames, c, h, w), fold, channel_dim=2).view(nt, c, h, w)


def _shift(x5: torch.Tensor, fold: int, channel_dim: int) -> torch.Tensor:
    """The shift of a (videos*snippets, T, ...) view with channels at ``channel_dim``: one pass over memory
    (the two shifted slices, zero-padded in time, and the untouched channels concatenated), instead of
    zero-filling a whole output and copying three parts into it. Returns a contiguous tensor."""
    after = x5.dim() - 2  # dimensions after the frame dimension
    pad_back = [0, 0] * (after) + [0, 1]  # F.pad lists the last dimension first: frame t takes t+1, last zero
    pad_forward = [0, 0] * (after) + [1, 0]  # frame t takes t-1, first zero

    def channels(t: torch.Tensor, lo: int, hi: int | None) -> torch.Tensor:
        return t.narrow(channel_dim, lo, (hi if hi is not None else t.shape[channel_dim]) - lo)

    back = F.pad(channels(x5[:, 1:], 0, fold), pad_back)
    forward = F.pad(channels(x5[:, :-1], fold, 2 * fold), pad_forward)
    return torch.cat([back, forward, channels(x5, 2 * fold, None)], dim=channel_dim)
