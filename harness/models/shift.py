"""The TSM temporal shift (residual, "blockres"), strictly within each snippet."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
    # one pass over memory: the two shifted slices (zero-padded in time) and the untouched channels are
    # concatenated, instead of zero-filling a whole output and copying three parts into it
    back = F.pad(x5[:, 1:, :fold], (0, 0, 0, 0, 0, 0, 0, 1))  # frame t takes t+1; last frame zero
    forward = F.pad(x5[:, :-1, fold : 2 * fold], (0, 0, 0, 0, 0, 0, 1, 0))  # frame t takes t-1; first zero
    return torch.cat([back, forward, x5[:, :, 2 * fold :]], dim=2).view(nt, c, h, w)
