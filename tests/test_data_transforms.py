"""Video transforms on uint8 (U, C, T, H, W) tensors and the layout helpers."""

import numpy as np
import pytest
import torch

from harness.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    CenterCrop,
    MultiScaleCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    ResizeShortSide,
    ThreeCrop,
    eval_transform,
    normalize,
    snippets_to_clips,
    snippets_to_frames,
    split_views,
    train_transform,
)


def position_video(u=2, t=3, h=40, w=60):
    """Pixel (y, x) of every frame holds x in channel 0, y in channel 1, snippet*10+frame in channel 2,
    stored like a decoder buffer (U, T, H, W, C) and viewed as (U, C, T, H, W)."""
    buf = torch.zeros(u, t, h, w, 3, dtype=torch.uint8)
    buf[..., 0] = torch.arange(w, dtype=torch.uint8)
    buf[..., 1] = torch.arange(h, dtype=torch.uint8)[:, None]
    buf[..., 2] = (torch.arange(u)[:, None] * 10 + torch.arange(t)[None, :]).to(torch.uint8)[:, :, None, None]
    return buf.permute(0, 4, 1, 2, 3)


def test_center_and_three_crop_positions():
    x = position_video()
    c = CenterCrop(20)(x)
    assert c.shape == (2, 3, 3, 20, 20)
    assert c[0, 0, 0, 0, 0] == 20 and c[0, 1, 0, 0, 0] == 10  # x offset (60-20)/2, y offset (40-20)/2
    three = ThreeCrop(40)(x)
    assert three.shape == (6, 3, 3, 40, 40)
    assert [int(three[k * 2, 0, 0, 0, 0]) for k in range(3)] == [0, 10, 20]  # crop-major, along width
    assert torch.equal(three[2:4, 2], x[:, 2, :, :40, 10:50])  # snippets stay in order inside a crop
    tall = position_video(h=60, w=40)
    assert [int(ThreeCrop(40)(tall)[k * 2, 1, 0, 0, 0]) for k in range(3)] == [0, 10, 20]


def test_flip_mirrors_every_frame_and_can_be_switched_off():
    x = position_video()
    flipped = RandomHorizontalFlip(1.0)(x, rng=np.random.default_rng(0))
    assert torch.equal(flipped, x.flip(-1)) and flipped[0, 0, 0, 0, 0] == 59
    assert torch.equal(RandomHorizontalFlip(0.0)(x), x)
    no_flip = train_transform(20, flip=False, scales=(1.0,))
    assert not any(isinstance(s, RandomHorizontalFlip) for s in no_flip.transforms)
    rng = np.random.default_rng(3)
    flips = [bool(RandomHorizontalFlip(0.5)(x, rng=rng)[0, 0, 0, 0, 0] == 59) for _ in range(200)]
    assert 60 < sum(flips) < 140


def test_same_crop_for_all_snippets_and_frames():
    x = position_video(u=3, t=4)
    for t in (RandomResizedCrop(16, area=(0.2, 0.6)), MultiScaleCrop(16, scales=(0.8, 0.6))):
        y = t(x, rng=np.random.default_rng(1))
        assert y.shape == (3, 3, 4, 16, 16) and y.dtype == torch.uint8
        ref = y[0, :2, 0]
        assert all(torch.equal(y[u, :2, k], ref) for u in range(3) for k in range(4))
        assert torch.equal(y[:, 2, :, 5, 5], x[:, 2, :, 0, 0])  # time channel untouched


def test_random_resized_crop_region_bounds_and_determinism():
    rrc = RandomResizedCrop(32, area=(0.08, 1.0))
    rng = np.random.default_rng(0)
    for _ in range(500):
        top, left, ch, cw = rrc.region(48, 64, rng)
        assert 0 <= top and top + ch <= 48 and 0 <= left and left + cw <= 64 and ch > 0 and cw > 0
    a = rrc(position_video(), rng=np.random.default_rng(9))
    b = rrc(position_video(), rng=np.random.default_rng(9))
    assert torch.equal(a, b)


def test_multiscale_crop_sizes():
    msc = MultiScaleCrop(16, scales=(1, 0.875, 0.75, 0.66), max_distort=1)
    sides = {int(40 * s) for s in (1, 0.875, 0.75, 0.66)}
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left, ch, cw = msc.region(40, 60, rng)
        assert ch in sides and cw in sides and top + ch <= 40 and left + cw <= 60


def test_resize_short_side_and_eval_transform():
    x = position_video(h=40, w=60)
    r = ResizeShortSide(20)(x)
    assert r.shape == (2, 3, 3, 20, 30)
    assert torch.equal(r[:, 2, :, 0, 0], x[:, 2, :, 0, 0])  # constant planes stay exact
    e = eval_transform(16)  # resize 18 (= 16 * 256/224), centre crop 16
    assert e(x).shape == (2, 3, 3, 16, 16)
    assert eval_transform(16, resize=16, crops=3)(x).shape == (6, 3, 3, 16, 16)
    with pytest.raises(ValueError, match="crops"):
        eval_transform(16, crops=2)
    with pytest.raises(ValueError, match="resize"):
        eval_transform(16, resize=10)


def test_normalize_batch_layout():
    x = torch.full((2, 4, 3, 2, 5, 5), 128, dtype=torch.uint8)  # (N, U, C, T, H, W)
    y = normalize(x)
    assert y.dtype == torch.float32 and y.shape == x.shape
    for c in range(3):
        assert torch.allclose(y[:, :, c], torch.tensor((128 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]))
    assert normalize(x.half()).dtype == torch.float16
    with pytest.raises(ValueError, match="C=3"):
        normalize(torch.zeros(2, 4, 5, 5))


def test_layout_helpers():
    n, v, u, c, t, h, w = 2, 3, 4, 3, 5, 2, 2
    x = torch.arange(n * v * u * c * t * h * w).reshape(n, v * u, c, t, h, w)
    views = split_views(x, u)
    assert views.shape == (n * v, u, c, t, h, w)
    assert torch.equal(views[1 * v + 2, 3], x[1, 2 * u + 3])  # video 1, view 2, snippet 3
    clips = snippets_to_clips(views)
    assert clips.shape == (n * v * u, c, t, h, w) and torch.equal(clips[u + 1], views[1, 1])
    frames = snippets_to_frames(views)
    assert frames.shape == (n * v * u * t, c, h, w)
    assert torch.equal(frames[(1 * u + 2) * t + 4], views[1, 2, :, 4])  # snippet-major, then time
    with pytest.raises(ValueError, match="multiple"):
        split_views(x, 5)
