"""Snippet sampling as in DSANet / TSN (spec section 5).

A video of ``N`` frames is cut into ``S`` equal segments; segment ``k`` covers frames
``[floor(k N / S), floor((k+1) N / S))``. Inside each segment one *snippet* is taken: a clip
of ``T`` frames, one every ``frame_interval`` frames, spanning ``L = (T-1) * interval + 1``
source frames.

Placement of the clip of segment ``[a, b)``: its start ``s`` lies in ``[min(a, b-L), max(a, b-L)]``,
i.e. the clip lies inside the segment when the segment is long enough, and otherwise covers
the whole segment and spills equally into its neighbours.

- ``train``: ``s`` uniform in that range (drawn from the given ``numpy`` generator);
- ``val`` / ``test``: the middle of that range (the clip is centred on the segment).

Then, when the video holds at least one clip (``N >= L``), ``s`` is shifted into
``[0, N-L]`` so that every index is a real frame. When the video is *shorter than one clip*
(``N < L``) the ``short_video`` rule applies to the indices ``s + j * interval``:

- ``"clamp"`` (default): indices are clipped to ``[0, N-1]``: the first/last frame repeats,
  temporal order is kept (important for order-sensitive labels);
- ``"loop"``: indices are taken modulo ``N`` (the video is repeated periodically).

Never an index error; ``N = 0`` raises ValueError (the dataset reports it as a corrupt video).

Modes and groups: ``train`` and ``val`` use ``S = U`` segments and return ``(U, T)``
indices. ``test`` uses ``S = G * U`` segments (``G = test_groups``, spec: 2) and returns
``(G * U, T)``: row ``g * U + u`` is the snippet of segment ``u * G + g``, so group ``g``
takes segments ``g, g+G, g+2G, ...`` and every group spans the whole video (interleaved).

The sampler is a pure function of ``(num_frames, rng)``; ``rng`` is only consulted in train mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODES = ("train", "val", "test")
SHORT_VIDEO_RULES = ("clamp", "loop")


@dataclass(frozen=True)
class SnippetSampler:
    """Frame indices of ``U`` snippets of ``T`` frames (see the module docstring).

    num_snippets:       U, snippets per view (spec: 4).
    frames_per_snippet: T, frames per snippet (spec: 8).
    frame_interval:     source frames between two sampled frames of a snippet (spec: 8).
    mode:               "train" (random offsets), "val" (centred), "test" (centred, ``test_groups``
                        interleaved groups of U snippets).
    test_groups:        G, groups in test mode (spec: 2); ignored otherwise.
    short_video:        "clamp" or "loop", the rule for videos shorter than one clip.
    """

    num_snippets: int = 4
    frames_per_snippet: int = 8
    frame_interval: int = 8
    mode: str = "train"
    test_groups: int = 2
    short_video: str = "clamp"

    def __post_init__(self):
        for name in ("num_snippets", "frames_per_snippet", "frame_interval", "test_groups"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"SnippetSampler.{name} must be an integer >= 1, not {value!r}")
        if self.mode not in MODES:
            raise ValueError(f"SnippetSampler.mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.short_video not in SHORT_VIDEO_RULES:
            raise ValueError(
                f"SnippetSampler.short_video must be one of {', '.join(SHORT_VIDEO_RULES)}, not {self.short_video!r}"
            )

    @property
    def groups(self) -> int:
        """Groups of U snippets returned: ``test_groups`` in test mode, else 1."""
        return self.test_groups if self.mode == "test" else 1

    @property
    def clip_span(self) -> int:
        """Source frames covered by one snippet: ``(T-1) * interval + 1``."""
        return (self.frames_per_snippet - 1) * self.frame_interval + 1

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of the returned index array: ``(groups * U, T)``."""
        return (self.groups * self.num_snippets, self.frames_per_snippet)

    def __call__(self, num_frames: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """Frame indices (int64, shape ``(groups * U, T)``) for a video of ``num_frames`` frames."""
        n = int(num_frames)
        if n < 1:
            raise ValueError(f"cannot sample from a video with {num_frames} frames")
        if self.mode == "train" and rng is None:
            raise ValueError("SnippetSampler in train mode needs a numpy Generator (rng)")
        groups, u = self.groups, self.num_snippets
        segments = groups * u
        span = self.clip_span
        k = np.arange(segments)
        seg_start = (k * n) // segments
        seg_end = ((k + 1) * n) // segments
        low = np.minimum(seg_start, seg_end - span)
        high = np.maximum(seg_start, seg_end - span)
        if self.mode == "train":
            start = rng.integers(low, high + 1)
        else:
            start = (low + high) // 2
        if n >= span:
            start = np.clip(start, 0, n - span)
        idx = start[:, None] + np.arange(self.frames_per_snippet)[None, :] * self.frame_interval
        if n < span:
            idx = np.clip(idx, 0, n - 1) if self.short_video == "clamp" else np.mod(idx, n)
        # segment-major (k = u * G + g) -> group-major rows (g * U + u)
        order = (np.arange(u)[None, :] * groups + np.arange(groups)[:, None]).reshape(-1)
        return idx[order].astype(np.int64)
