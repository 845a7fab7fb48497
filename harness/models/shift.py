"""The TSM temporal shift (residual, "blockres"), strictly within each snippet."""

from __future__ import annotations

import torch


def temporal_shift(x: torch.Tensor, num_frames: int, shift_div: int = 8) -> torch.Tensor:
    """Shift 1/shift_div of the channels one frame back and as many one frame forward.

    x: (N*U*T, C, H, W) with the T frames of each snippet consecutive. Channels [0, C/d) of frame t
    take frame t+1's values, channels [C/d, 2C/d) take frame t-1's; zeros where a snippet ends, so
    nothing ever crosses from one snippet (or video) to the next. The other channels are unchanged.
    Returns a new tensor of the same shape.
    """
    nt, c, h, w = x.shape
    if nt % num_frames:
        raise ValueError(f"temporal_shift: batch {nt} is not a multiple of T={num_frames}")
    fold = c // shift_div
    x5 = x.view(nt // num_frames, num_frames, c, h, w)
    out = torch.zeros_like(x5)
    out[:, :-1, :fold] = x5[:, 1:, :fold]  # shift back in time: frame t sees t+1
    out[:, 1:, fold:2 * fold] = x5[:, :-1, fold:2 * fold]  # shift forward: frame t sees t-1
    out[:, :, 2 * fold:] = x5[:, :, 2 * fold:]
    return out.view(nt, c, h, w)
