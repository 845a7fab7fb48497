"""SnippetSampler: segment placement, train bounds, val/test centring, interleaved groups, short videos."""

import numpy as np
import pytest

from harness.data import SnippetSampler


def segments(n, s):
    return [((k * n) // s, ((k + 1) * n) // s) for k in range(s)]


def test_shapes_and_dtype():
    assert SnippetSampler(4, 8, 8, "train")(300, np.random.default_rng(0)).shape == (4, 8)
    assert SnippetSampler(4, 8, 8, "val")(300).shape == (4, 8)
    out = SnippetSampler(4, 8, 8, "test")(300)
    assert out.shape == (8, 8) and out.dtype == np.int64
    assert SnippetSampler(4, 8, 8, "test", test_groups=3)(300).shape == (12, 8)
    assert SnippetSampler(3, 2, 1, "test", test_groups=2).shape == (6, 2)


def test_val_is_centred_inside_each_segment():
    n, u, t, step = 300, 4, 8, 8
    idx = SnippetSampler(u, t, step, "val")(n)
    span = (t - 1) * step + 1
    for (a, b), row in zip(segments(n, u), idx):
        assert np.all(np.diff(row) == step)
        assert a <= row[0] and row[-1] < b  # inside its segment
        assert row[0] - a == (b - a - span) // 2  # centred


def test_train_offsets_within_bounds_and_cover_the_range():
    n, u, t, step = 200, 4, 4, 3
    sampler = SnippetSampler(u, t, step, "train")
    span = (t - 1) * step + 1
    rng = np.random.default_rng(1)
    starts = [set() for _ in range(u)]
    for _ in range(400):
        idx = sampler(n, rng)
        for k, ((a, b), row) in enumerate(zip(segments(n, u), idx)):
            assert np.all(np.diff(row) == step)
            assert a <= row[0] and row[-1] <= b - 1
            starts[k].add(int(row[0]) - a)
    for k, (a, b) in enumerate(segments(n, u)):
        assert starts[k] == set(range(b - a - span + 1))  # every admissible offset is drawn


def test_train_is_a_pure_function_of_rng():
    s = SnippetSampler(4, 8, 2, "train")
    a = s(123, np.random.default_rng([7, 1, 5]))
    b = s(123, np.random.default_rng([7, 1, 5]))
    c = s(123, np.random.default_rng([7, 2, 5]))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    with pytest.raises(ValueError, match="rng"):
        s(123)


def test_test_groups_are_interleaved_and_each_spans_the_video():
    n, u, g = 320, 4, 2
    test = SnippetSampler(u, 8, 4, "test", test_groups=g)(n)
    # the same clips, segment by segment, as a val sampler with U*G snippets would place them
    flat = SnippetSampler(u * g, 8, 4, "val")(n)
    for grp in range(g):
        for k in range(u):
            assert np.array_equal(test[grp * u + k], flat[k * g + grp])  # group i: snippets i, i+2, i+4, i+6
        starts = test[grp * u : (grp + 1) * u, 0]
        assert np.all(np.diff(starts) > 0)  # ordered in time
        assert starts[0] < n / u and starts[-1] >= n * (u - 1) / u - 8 * 4  # spans the whole video
    assert not np.array_equal(test[:u], test[u:])


def test_clip_longer_than_segment_covers_it_and_stays_in_video():
    # test mode on a 300-frame video: segments of 37.5 frames, clips of 57 frames
    n = 300
    idx = SnippetSampler(4, 8, 8, "test")(n)
    assert idx.min() >= 0 and idx.max() <= n - 1
    for row in idx:
        assert len(set(row.tolist())) == 8  # no repeated frame when the video holds a clip
    segs = segments(n, 8)
    for grp in range(2):
        for k in range(4):
            a, b = segs[k * 2 + grp]
            row = idx[grp * 4 + k]
            if 0 < a and b < n - 57:  # not shifted by the video bounds: covers its segment
                assert row[0] <= a and row[-1] >= b - 1


@pytest.mark.parametrize("mode", ["train", "val", "test"])
@pytest.mark.parametrize("n", [1, 2, 5, 20, 56])
def test_short_video_clamp_rule(mode, n):
    sampler = SnippetSampler(4, 8, 8, mode)  # clip span 57 > n
    idx = sampler(n, np.random.default_rng(0))
    assert idx.min() >= 0 and idx.max() <= n - 1
    assert np.all(np.diff(idx, axis=1) >= 0)  # clamp keeps temporal order inside a snippet
    if n >= 2:
        assert idx.min() == 0 and idx.max() == n - 1


def test_short_video_loop_rule():
    n = 20
    idx = SnippetSampler(4, 8, 8, "val", short_video="loop")(n)
    assert idx.min() >= 0 and idx.max() <= n - 1
    for row in idx:  # consecutive sampled frames are `interval` apart modulo n
        assert np.all(np.mod(np.diff(row), n) == 8 % n)


def test_video_exactly_one_clip_long():
    n = 57
    for mode in ("val", "test"):
        idx = SnippetSampler(4, 8, 8, mode)(n)
        assert all(np.array_equal(row, np.arange(0, 57, 8)) for row in idx)


def test_fewer_frames_than_segments():
    idx = SnippetSampler(8, 2, 1, "train")(3, np.random.default_rng(0))
    assert idx.shape == (8, 2) and idx.min() >= 0 and idx.max() <= 2


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        SnippetSampler(4, 8, 8, "eval")
    with pytest.raises(ValueError, match="frame_interval"):
        SnippetSampler(4, 8, 0, "val")
    with pytest.raises(ValueError, match="short_video"):
        SnippetSampler(4, 8, 8, "val", short_video="pad")
    with pytest.raises(ValueError, match="0 frames"):
        SnippetSampler(4, 8, 8, "val")(0)
