"""Video transforms on uint8 tensors, and the layout helpers at the model boundary.

Every transform takes a uint8 tensor ``(U, C, T, H, W)`` (snippets, RGB, frames, height,
width), applies the *same* spatial operation to every frame of every snippet of the video
(as TSN's group transforms do), and returns a uint8 tensor ``(U', C, T, h, w)``; ``U' = U``
except for multi-crop (:class:`ThreeCrop` returns ``3 U`` rows, crop-major: rows
``c * U .. c * U + U - 1`` are crop ``c``, so the snippets of a view stay consecutive).

Random transforms take an optional ``rng`` (``numpy.random.Generator``); the dataset passes
one derived from ``(seed, epoch, index)`` so augmentation does not depend on the worker.

Resizing runs on uint8 frames in channels-last memory (``(U*T, C, H, W)`` views of the
decoder's ``(U, T, H, W, C)`` buffer), the fast path of ``torch.nn.functional.interpolate``
(bilinear, antialiased). Normalisation is kept apart (:func:`normalize`) so it can run on the
GPU on whole batches and keep the loader workers light.

Layouts at the model boundary (see CONTRACTS.md):

- dataset sample: uint8 ``(V*U, C, T, H, W)``; batch: ``(N, V*U, C, T, H, W)``;
- :func:`split_views`: ``(N, V*U, ...)`` -> ``(N*V, U, ...)`` (a batch of views, U snippets each);
- :func:`snippets_to_clips`: ``(N, U, C, T, H, W)`` -> ``(N*U, C, T, H, W)`` (I3D);
- :func:`snippets_to_frames`: ``(N, U, C, T, H, W)`` -> ``(N*U*T, C, H, W)`` (TSM).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

# ImageNet statistics, RGB, on the 0..255 scale (spec section 5).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    return rng if rng is not None else np.random.default_rng()


def _check(x: torch.Tensor) -> None:
    if x.dim() != 5:
        raise ValueError(f"expected a video tensor (U, C, T, H, W), got shape {tuple(x.shape)}")


def resize_frames(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear (antialiased) resize of every frame of ``(U, C, T, H, W)`` to ``(height, width)``."""
    _check(x)
    u, c, t, h, w = x.shape
    if (h, w) == (height, width):
        return x
    frames = x.permute(0, 2, 1, 3, 4).reshape(u * t, c, h, w)  # a view for decoder buffers
    if frames.dtype == torch.uint8:
        frames = frames.contiguous(memory_format=torch.channels_last)
        out = F.interpolate(frames, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    else:
        out = F.interpolate(
            frames.float(), size=(height, width), mode="bilinear", antialias=True, align_corners=False
        ).to(frames.dtype)
    return out.reshape(u, t, c, height, width).permute(0, 2, 1, 3, 4)


def crop(x: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """The region ``[top:top+height, left:left+width]`` of every frame (a view, no copy)."""
    return x[..., top : top + height, left : left + width]


def short_side_size(h: int, w: int, size: int) -> tuple[int, int]:
    """(height, width) after resizing so that the short side is ``size`` (aspect kept)."""
    if h <= w:
        return size, max(size, round(w * size / h))
    return max(size, round(h * size / w)), size


class Compose:
    """Apply transforms in order; forwards ``rng`` to those that take it."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)
        self._takes_rng = [accepts_rng(t) for t in self.transforms]

    def __call__(self, x: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        for t, takes in zip(self.transforms, self._takes_rng):
            x = t(x, rng=rng) if takes else t(x)
        return x

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


def accepts_rng(fn: Callable) -> bool:
    """Whether ``fn`` can be called with an ``rng=`` keyword."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "rng" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


class ResizeShortSide:
    """Resize so that the short side of every frame is ``size`` pixels (aspect ratio kept)."""

    def __init__(self, size: int):
        self.size = int(size)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check(x)
        return resize_frames(x, *short_side_size(x.shape[-2], x.shape[-1], self.size))

    def __repr__(self) -> str:
        return f"ResizeShortSide({self.size})"


class RandomResizedCrop:
    """Inception-style crop: random area fraction in ``area`` and aspect ratio in ``ratio``
    (log-uniform), then resize to ``size x size``. Falls back to the largest centred crop of
    the nearest allowed ratio after 10 rejected draws (as torchvision)."""

    def __init__(self, size: int, area: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3)):
        if not (0 < area[0] <= area[1] <= 1):
            raise ValueError(f"RandomResizedCrop.area must satisfy 0 < lo <= hi <= 1, not {area}")
        if not (0 < ratio[0] <= ratio[1]):
            raise ValueError(f"RandomResizedCrop.ratio must satisfy 0 < lo <= hi, not {ratio}")
        self.size, self.area, self.ratio = int(size), tuple(area), tuple(ratio)

    def region(self, h: int, w: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = h * w * rng.uniform(*self.area)
            aspect = math.exp(rng.uniform(*log_ratio))
            cw = round(math.sqrt(target * aspect))
            ch = round(math.sqrt(target / aspect))
            if 0 < cw <= w and 0 < ch <= h:
                return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
        in_ratio = w / h
        if in_ratio < self.ratio[0]:
            cw, ch = w, round(w / self.ratio[0])
        elif in_ratio > self.ratio[1]:
            ch, cw = h, round(h * self.ratio[1])
        else:
            ch, cw = h, w
        return (h - ch) // 2, (w - cw) // 2, ch, cw

    def __call__(self, x: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        _check(x)
        top, left, ch, cw = self.region(x.shape[-2], x.shape[-1], _rng(rng))
        return resize_frames(crop(x, top, left, ch, cw), self.size, self.size)

    def __repr__(self) -> str:
        return f"RandomResizedCrop({self.size}, area={self.area}, ratio={self.ratio})"


class MultiScaleCrop:
    """TSN multi-scale crop: crop side lengths ``scales * min(H, W)`` (width and height scale
    indices differing by at most ``max_distort``), placed at one of 13 fixed positions
    (corners, centre, edge midpoints, quarter points; ``fix_crop``) or anywhere, then resized
    to ``size x size``."""

    def __init__(
        self, size: int, scales: Sequence[float] = (1, 0.875, 0.75, 0.66), max_distort: int = 1, fix_crop: bool = True
    ):
        if not scales or any(not (0 < s <= 1) for s in scales):
            raise ValueError(f"MultiScaleCrop.scales must be in (0, 1], not {scales}")
        self.size, self.scales = int(size), tuple(float(s) for s in scales)
        self.max_distort, self.fix_crop = int(max_distort), bool(fix_crop)

    def region(self, h: int, w: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        base = min(h, w)
        sides = [int(base * s) for s in self.scales]
        pairs = [(ch, cw) for i, ch in enumerate(sides) for j, cw in enumerate(sides) if abs(i - j) <= self.max_distort]
        ch, cw = pairs[int(rng.integers(len(pairs)))]
        if not self.fix_crop:
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
        sh, sw = (h - ch) / 4, (w - cw) / 4
        offsets = [
            (0, 0),
            (0, 4),
            (4, 0),
            (4, 4),
            (2, 2),
            (2, 0),
            (2, 4),
            (0, 2),
            (4, 2),
            (1, 1),
            (1, 3),
            (3, 1),
            (3, 3),
        ]
        oy, ox = offsets[int(rng.integers(len(offsets)))]
        return int(oy * sh), int(ox * sw), ch, cw

    def __call__(self, x: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        _check(x)
        top, left, ch, cw = self.region(x.shape[-2], x.shape[-1], _rng(rng))
        return resize_frames(crop(x, top, left, ch, cw), self.size, self.size)

    def __repr__(self) -> str:
        return f"MultiScaleCrop({self.size}, scales={self.scales}, max_distort={self.max_distort})"


class CenterCrop:
    """The central ``size x size`` region (frames must be at least that large)."""

    def __init__(self, size: int):
        self.size = int(size)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check(x)
        h, w = x.shape[-2:]
        if h < self.size or w < self.size:
            raise ValueError(f"CenterCrop({self.size}) on frames of {h}x{w}: resize first")
        return crop(x, (h - self.size) // 2, (w - self.size) // 2, self.size, self.size)

    def __repr__(self) -> str:
        return f"CenterCrop({self.size})"


class ThreeCrop:
    """Three ``size x size`` crops along the long side (start, centre, end), stacked crop-major:
    ``(U, C, T, H, W)`` -> ``(3 U, C, T, size, size)``."""

    def __init__(self, size: int):
        self.size = int(size)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check(x)
        h, w = x.shape[-2:]
        s = self.size
        if h < s or w < s:
            raise ValueError(f"ThreeCrop({s}) on frames of {h}x{w}: resize first")
        if w >= h:
            boxes = [((h - s) // 2, left) for left in (0, (w - s) // 2, w - s)]
        else:
            boxes = [(top, (w - s) // 2) for top in (0, (h - s) // 2, h - s)]
        return torch.cat([crop(x, top, left, s, s) for top, left in boxes], dim=0)

    def __repr__(self) -> str:
        return f"ThreeCrop({self.size})"


class RandomHorizontalFlip:
    """Mirror every frame left-right with probability ``p``. Switch it off (``p = 0`` or
    ``flip=False`` in :func:`train_transform`) for direction-sensitive labels (e.g. the
    synthetic set's motion factor, Something-Something's 'left to right' classes)."""

    def __init__(self, p: float = 0.5):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip.p must be in [0, 1], not {p}")
        self.p = float(p)

    def __call__(self, x: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        if self.p > 0 and _rng(rng).random() < self.p:
            return x.flip(-1)
        return x

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Normalize:
    """In-worker normalisation (prefer :func:`normalize` on the GPU batch): uint8 -> float32."""

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return normalize(x, self.mean, self.std)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


def normalize(
    x: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> torch.Tensor:
    """``(x - mean) / std`` per RGB channel, on the 0..255 scale; the channel axis is dim -4
    (``(..., C, T, H, W)``: a sample ``(U, C, T, H, W)`` or a batch ``(N, U, C, T, H, W)``).

    Works on any device; uint8 input is converted to float32 (other float dtypes are kept).
    """
    if x.dim() < 4 or x.shape[-4] != len(mean):
        raise ValueError(f"expected (..., C={len(mean)}, T, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.float()
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(-1, 1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(-1, 1, 1, 1)
    return (x - m) / s


def train_transform(
    size: int = 224,
    *,
    flip: bool = True,
    scales: Sequence[float] | None = None,
    crop: str | None = None,
    area: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    resize: int | None = None,
) -> Compose:
    """Training augmentation: [resize short side] -> crop to ``size`` -> [horizontal flip 0.5].

    crop:   "random_resized" (spec default: area ``area``, aspect ``ratio``) or "multiscale"
            (TSN, ``scales`` of the short side). Default: "multiscale" when ``scales`` is given,
            else "random_resized".
    flip:   False for direction-sensitive labels (the synthetic set).
    resize: resize the short side to this first (e.g. 256 before a TSN multi-scale crop).
    """
    if crop is None:
        crop = "multiscale" if scales is not None else "random_resized"
    steps: list[Callable] = []
    if resize is not None:
        steps.append(ResizeShortSide(resize))
    if crop == "random_resized":
        steps.append(RandomResizedCrop(size, area=area, ratio=ratio))
    elif crop == "multiscale":
        steps.append(MultiScaleCrop(size, scales=scales if scales is not None else (1, 0.875, 0.75, 0.66)))
    else:
        raise ValueError(f"train_transform crop must be 'random_resized' or 'multiscale', not {crop!r}")
    if flip:
        steps.append(RandomHorizontalFlip(0.5))
    return Compose(steps)


def eval_transform(size: int = 224, *, resize: int | None = None, crops: int = 1) -> Compose:
    """Evaluation: resize the short side to ``resize`` (default ``round(size * 256 / 224)``,
    i.e. 256 for 224), then a centre crop (``crops=1``) or three crops (``crops=3``) of ``size``.
    The spec's test protocol is ``eval_transform(256, resize=256, crops=3)``."""
    if crops not in (1, 3):
        raise ValueError(f"eval_transform crops must be 1 or 3, not {crops!r}")
    if resize is None:
        resize = round(size * 256 / 224)
    if resize < size:
        raise ValueError(f"eval_transform resize ({resize}) must be >= size ({size})")
    return Compose([ResizeShortSide(resize), CenterCrop(size) if crops == 1 else ThreeCrop(size)])


def split_views(x: torch.Tensor, num_snippets: int) -> torch.Tensor:
    """``(N, V*U, C, T, H, W)`` -> ``(N*V, U, C, T, H, W)``: one row per view (average the
    scores of rows ``n*V .. n*V + V - 1`` to get video ``n``'s score)."""
    n, vu = x.shape[:2]
    if vu % num_snippets:
        raise ValueError(f"{vu} snippets per sample is not a multiple of U={num_snippets}")
    return x.reshape(n * (vu // num_snippets), num_snippets, *x.shape[2:])


def snippets_to_clips(x: torch.Tensor) -> torch.Tensor:
    """``(N, U, C, T, H, W)`` -> ``(N*U, C, T, H, W)`` (I3D input; snippets of a video consecutive)."""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


def snippets_to_frames(x: torch.Tensor) -> torch.Tensor:
    """``(N, U, C, T, H, W)`` -> ``(N*U*T, C, H, W)`` (TSM input; frames of a snippet consecutive)."""
    n, u, c, t, h, w = x.shape
    return x.permute(0, 1, 3, 2, 4, 5).reshape(n * u * t, c, h, w)
