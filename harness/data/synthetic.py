"""The embedded long-range synthetic video set: labels that *need* information across snippets.

Every video has ``F`` frames (default 64; ``F`` divisible by 4) cut into four **quarters** of
``Q = F/4`` frames. Two objects are drawn on a dark background:

- **A**, a bright filled square, and **B**, a bright filled disc (told apart by shape in any
  single frame; their colours are random per video and do not identify them).

Each object is visible during one whole quarter, A and B in two *different* quarters chosen at
random; the two other quarters show only the background. While visible, the object moves
steadily across the frame along the video's **motion** direction, from near one edge to near the
other, during its quarter (so two frames a few apart reveal the direction).

**Label** = ``order * M + motion`` with

- order factor: ``A_before_B`` (0) or ``B_before_A`` (1), i.e. whether A's quarter comes first;
- motion factor: the first ``M = K / 2`` of ``left_to_right, right_to_left, top_to_bottom,
  bottom_to_top`` (default ``K = 4`` classes: the two horizontal directions);

class names ``<order>__<motion>``, e.g. ``A_before_B__left_to_right`` (see ``classes.json``).

**Why a snippet-averaging model is at chance on order.** With ``U = 4`` segment-aligned
snippets (TSN/DSANet sampling, :class:`~harness.data.sampling.SnippetSampler`), snippet ``u``
lies in quarter ``u``. A model that scores each snippet independently with shared weights and
averages the scores (TSN consensus, the ``avg`` aggregator) sees the *multiset*
{A-quarter, B-quarter, empty, empty}; its distribution (object appearance, placement, motion,
background, noise, encoder behaviour) is the same for both orders, only the positions differ.
So its order accuracy is exactly chance (50 %), whatever it learns, while the motion factor
stays fully learnable: its best class accuracy is ``50 %`` (``1/K`` = 25 % is plain chance for
K = 4). A model that exchanges information across snippets (DSA, a temporal convolution or
non-local block over snippets) can learn the order and reach 100 %.

**Assumption for exactness.** Each sampled clip must stay inside its quarter:
``(T - 1) * frame_interval + 1 <= F / (U * G)`` with ``U = 4`` and ``G`` test groups for the
test protocol (``G = 1`` for train/val). For the default ``F = 64``: ``T = 4, interval = 2``
(span 7 <= 8) holds for train, val and the 2-group test protocol (``RECOMMENDED``); ``T = 8,
interval = 2`` (span 15 <= 16) holds for train/val and ``test_groups = 1`` only. For other ``U`` the task stays
learnable but the
exact-chance argument only holds when ``U`` snippets split the video into the quarters
(``U = 4``; ``U = 8`` with clips inside eighths also works since each snippet still sees one
quarter, and the multiset argument is unchanged).

**Encoding** keeps the argument exact: H.264 (libx264 via PyAV), yuv420p, constant quantiser
(``qp``, no adaptive quantisation or macroblock tree), no B-frames, and a closed GOP of exactly
``Q`` frames with scene-cut detection off: each quarter starts with an IDR frame and is coded
independently of the others, so compression artefacts carry no information about a quarter's
position. Single-threaded encoding with bit-exact muxing: the same seed gives byte-identical
files (and so identical decoded frames).

**Augmentation**: horizontal flips swap the motion labels: use ``flip=False``. Crops should keep
most of the frame (the objects are ``obj_scale`` of the side): see ``RECOMMENDED``.

Outputs in ``out_dir``: ``videos/vid_NNNNN.mp4``, ``train.txt`` / ``val.txt`` [/ ``test.txt`` with
``test_fraction > 0``] (video lists relative to ``out_dir``), ``classes.json``, ``meta.json`` (parameters, chance
levels, placement of every event; written first as the record ``complete: false`` of the set being made). Class
counts are exactly balanced in each split. A folder holding a set of other parameters, or lists this module did
not write, is never written over without ``force`` (which removes the old set first).
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from harness.errors import ConfigError
from harness.results.rundir import atomic_write_bytes, atomic_write_json

ORDERS = ("A_before_B", "B_before_A")
MOTIONS = ("left_to_right", "right_to_left", "top_to_bottom", "bottom_to_top")
FORMAT_VERSION = 1

# The set of the CPU study (`make reproduce`): small frames, 64 frames, a held-out test split.
STUDY_SET = {
    "num_videos": 600,
    "num_classes": 4,
    "size": 32,
    "frames": 64,
    "seed": 0,
    "val_fraction": 0.2,
    "test_fraction": 0.2,
    "identity": "colour",
}
"""The set of the CPU study (experiments/synthetic_study.yaml). ``identity="colour"`` gives A and B fixed
colours on top of their shapes: a model need not learn to tell a 15-pixel square from a disc before the
order can pay off, which cuts the SGD steps the order needs on a CPU budget (measured: with shape-only
identity a small DSA network still sat at chance on the order after ~150 steps). The exact-chance
argument for snippet averaging is unchanged: each snippet still sees one of {A, B, nothing}, with the
same distribution for both orders."""

IDENTITY_COLOURS = {"A": (255.0, 70.0, 60.0), "B": (60.0, 110.0, 255.0)}
"""Colours of A and B when ``identity="colour"``."""

# Sampling and augmentation that keep the exact-chance argument for 64-frame videos in every mode:
# clip span (4-1)*2+1 = 7 <= 64/(4*2) = 8 frames, so even the 2 interleaved test groups stay inside quarters.
RECOMMENDED = {
    "num_snippets": 4,
    "frames_per_snippet": 4,
    "frame_interval": 2,
    "test_groups": 2,
    "train_transform": {"flip": False, "crop": "multiscale", "scales": [1.0, 0.875, 0.75]},
    "eval_transform": {"crops": 1},
}


@dataclass(frozen=True)
class SynthConfig:
    """Parameters of the synthetic set (validated on construction: ``ConfigError``, a ValueError).

    num_videos:   total videos, a multiple of num_classes (exact balance).
    num_classes:  K = 2 * motion types, K in {2, 4, 6, 8}.
    size:         frame side in pixels (square frames).
    frames:       F frames per video, divisible by 4, >= 8.
    seed:         everything (labels, placement, colours, noise) derives from it.
    val_fraction: share of each class that goes to val.txt.
    test_fraction: share of each class that goes to test.txt (0: no test split, no test.txt).
    fps:          frame rate written in the container (no effect on content).
    qp:           H.264 constant quantiser (lower = better quality; 10..18 keeps colours).
    noise:        std of the per-pixel Gaussian noise, 0..255 scale.
    obj_scale:    object side / frame side, range (lo, hi), drawn per object.
    identity:     "shape" (A and B differ by shape only, random colours) or "colour" (also fixed colours).
    """

    num_videos: int = 400
    num_classes: int = 4
    size: int = 112
    frames: int = 64
    seed: int = 0
    val_fraction: float = 0.2
    test_fraction: float = 0.0
    fps: int = 25
    qp: int = 14
    noise: float = 3.0
    obj_scale: tuple[float, float] = (0.22, 0.32)
    identity: str = "shape"  # "shape": A/B told apart by shape only (random colours); "colour": + fixed colours

    def __post_init__(self):
        object.__setattr__(self, "obj_scale", tuple(float(v) for v in self.obj_scale))
        if self.num_classes not in (2, 4, 6, 8):
            raise ConfigError(f"num_classes must be 2, 4, 6 or 8 (2 orders x 1..4 motions), not {self.num_classes}")
        if self.num_videos < self.num_classes or self.num_videos % self.num_classes:
            raise ConfigError(
                f"num_videos ({self.num_videos}) must be a positive multiple of "
                f"num_classes ({self.num_classes}) for exact balance"
            )
        if self.frames < 8 or self.frames % 4:
            raise ConfigError(f"frames must be a multiple of 4 and >= 8 (four quarters), not {self.frames}")
        if self.size < 32 or self.size % 2:
            raise ConfigError(f"size must be even and >= 32 (H.264 yuv420p), not {self.size}")
        if not (
            0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1 and self.val_fraction + self.test_fraction < 1
        ):
            raise ConfigError(
                f"val_fraction ({self.val_fraction}) and test_fraction ({self.test_fraction}) "
                "must be >= 0 with a sum < 1"
            )
        per_class = self.num_videos // self.num_classes
        held_out = (self.val_fraction > 0) + (self.test_fraction > 0)
        if per_class < held_out + 1:
            raise ConfigError(f"{per_class} videos per class cannot fill train plus {held_out} held-out split(s)")
        if not 0 <= self.qp <= 51:
            raise ConfigError(f"qp must be in 0..51, not {self.qp}")
        if self.noise < 0:
            raise ConfigError(f"noise must be >= 0, not {self.noise}")
        if self.identity not in ("shape", "colour"):
            raise ConfigError(f"identity must be 'shape' or 'colour', not {self.identity!r}")
        lo, hi = self.obj_scale
        if not 0.05 <= lo <= hi <= 0.5:
            raise ConfigError(f"obj_scale must satisfy 0.05 <= lo <= hi <= 0.5, not {self.obj_scale}")
        if self.fps < 1:
            raise ConfigError(f"fps must be >= 1, not {self.fps}")

    @property
    def num_motions(self) -> int:
        return self.num_classes // 2

    @property
    def quarter(self) -> int:
        return self.frames // 4


def class_factors(num_classes: int) -> list[dict]:
    """``[{"index", "name", "factors": {"order", "motion"}}]`` for label ``order * M + motion``."""
    m = num_classes // 2
    return [
        {
            "index": o * m + k,
            "name": f"{ORDERS[o]}__{MOTIONS[k]}",
            "factors": {"order": ORDERS[o], "motion": MOTIONS[k]},
        }
        for o in range(2)
        for k in range(m)
    ]


def chance_levels(num_classes: int) -> dict:
    """Accuracies (%) of guessing, and the best a snippet-averaging model can reach."""
    m = num_classes // 2
    return {
        "chance_pct": {"class": 100.0 / num_classes, "order": 50.0, "motion": 100.0 / m},
        "snippet_averaging_ceiling_pct": {"class": 50.0, "order": 50.0, "motion": 100.0},
        "cross_snippet_ceiling_pct": {"class": 100.0, "order": 100.0, "motion": 100.0},
    }


def factor_accuracy(pred, target, num_classes: int) -> dict:
    """Accuracy (%) of the order and motion factors of predicted labels ``pred`` against ``target``."""
    pred, target = np.asarray(pred).reshape(-1), np.asarray(target).reshape(-1)
    if pred.shape != target.shape or pred.size == 0:
        raise ValueError("pred and target must be non-empty and of the same length")
    m = num_classes // 2
    return {
        "order": float(100.0 * np.mean(pred // m == target // m)),
        "motion": float(100.0 * np.mean(pred % m == target % m)),
        "class": float(100.0 * np.mean(pred == target)),
    }


# --- per-video plan ---------------------------------------------------------------------


def _plan(cfg: SynthConfig) -> list[dict]:
    """Labels, splits and quarters of every video (cheap, deterministic)."""
    rng = np.random.default_rng([cfg.seed, 0x5EED])
    k, per_class = cfg.num_classes, cfg.num_videos // cfg.num_classes
    labels = rng.permutation(np.repeat(np.arange(k), per_class))
    n_val = max(round(per_class * cfg.val_fraction), 1) if cfg.val_fraction > 0 else 0
    n_test = max(round(per_class * cfg.test_fraction), 1) if cfg.test_fraction > 0 else 0
    while n_val + n_test > per_class - 1:  # keep at least one training video per class
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    pairs = {
        0: [(a, b) for a in range(4) for b in range(4) if a < b],  # A before B
        1: [(a, b) for a in range(4) for b in range(4) if a > b],
    }  # B before A
    m = cfg.num_motions
    plan: list[dict] = [{} for _ in range(cfg.num_videos)]
    for c in range(k):
        members = np.flatnonzero(labels == c)
        order, motion = divmod(c, m)
        tiled = (pairs[order] * (len(members) // 6 + 1))[: len(members)]
        chosen = [tiled[i] for i in rng.permutation(len(tiled))]
        for rank, (i, (qa, qb)) in enumerate(zip(members.tolist(), chosen)):
            plan[i] = {
                "index": i,
                "file": f"videos/vid_{i:05d}.mp4",
                "label": int(c),
                "split": (
                    "train" if rank < per_class - n_val - n_test else "val" if rank < per_class - n_test else "test"
                ),
                "order": ORDERS[order],
                "motion": MOTIONS[motion],
                "quarters": {"A": int(qa), "B": int(qb)},
            }
    return plan


def _appearance(cfg: SynthConfig, item: dict) -> dict:
    """Colours, sizes and trajectories of one video, from ``(seed, index)``."""
    rng = np.random.default_rng([cfg.seed, item["index"], 1])
    s = cfg.size
    bg = rng.uniform(10, 70, size=3)
    grad = rng.uniform(-20, 20, size=2)
    objects = {}
    for name in ("A", "B"):
        side = float(rng.uniform(*cfg.obj_scale) * s)
        colour = rng.uniform(150, 255, size=3)
        colour[rng.integers(3)] = 255.0  # bright: one channel saturated
        if cfg.identity == "colour":  # drawn above anyway, so the other draws do not depend on this option
            colour = np.asarray(IDENTITY_COLOURS[name])
        lo, hi = side / 2 + 1, s - side / 2 - 1
        span = hi - lo
        start = lo + rng.uniform(0, 0.15) * span
        end = hi - rng.uniform(0, 0.15) * span
        cross = float(rng.uniform(lo, hi))  # position on the other axis, fixed
        q = item["quarters"][name]
        objects[name] = {
            "shape": "square" if name == "A" else "disc",
            "side_px": round(side, 2),
            "colour": [round(float(v), 1) for v in colour],
            "quarter": q,
            "frames": [q * cfg.quarter, (q + 1) * cfg.quarter],
            "path_px": [round(float(start), 2), round(float(end), 2)],
            "cross_px": round(cross, 2),
        }
    return {
        "background": [round(float(v), 1) for v in bg],
        "gradient": [round(float(v), 2) for v in grad],
        "objects": objects,
    }


def canvas(size: int, look: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel-centre grids ``yy, xx`` (float32 ``(size, size)``) and the video's background (its colour plus
    its linear gradient, ``(size, size, 3)``), shared by both synthetic families."""
    coords = np.arange(size, dtype=np.float32) + 0.5
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    ramp = (xx / size - 0.5) * look["gradient"][0] + (yy / size - 0.5) * look["gradient"][1]
    return yy, xx, np.asarray(look["background"], np.float32)[None, None, :] + ramp[..., None]


def paint(frame: np.ndarray, shape: str, grids: tuple, centre: tuple, half: float, colour: np.ndarray) -> np.ndarray:
    """``frame`` with a filled square or disc of half-side ``half`` at ``centre`` (x, y) in ``colour``, its
    edges antialiased by the share of each pixel it covers (``grids``: ``yy, xx`` from :func:`canvas`)."""
    (yy, xx), (cx, cy) = grids, centre
    if shape == "square":
        cover = np.clip(half - np.abs(xx - cx) + 0.5, 0, 1) * np.clip(half - np.abs(yy - cy) + 0.5, 0, 1)
    else:
        cover = np.clip(half - np.hypot(xx - cx, yy - cy) + 0.5, 0, 1)
    return frame * (1 - cover[..., None]) + colour * cover[..., None]


def render_video(cfg: SynthConfig, item: dict, look: dict) -> np.ndarray:
    """Frames of one video: uint8 ``(F, size, size, 3)`` RGB."""
    s, q = cfg.size, cfg.quarter
    yy, xx, background = canvas(s, look)
    noise_rng = np.random.default_rng([cfg.seed, item["index"], 2])
    video = np.empty((cfg.frames, s, s, 3), np.uint8)
    motion = item["motion"]
    for f in range(cfg.frames):
        frame = background.copy()
        for obj in look["objects"].values():
            first, last = obj["frames"]
            if not first <= f < last:
                continue
            t = (f - first) / (q - 1)
            a, b = obj["path_px"]
            if motion in ("right_to_left", "bottom_to_top"):
                a, b = b, a
            along = a + (b - a) * t
            cx, cy = (
                (along, obj["cross_px"]) if motion in ("left_to_right", "right_to_left") else (obj["cross_px"], along)
            )
            colour = np.asarray(obj["colour"], np.float32)
            frame = paint(frame, obj["shape"], (yy, xx), (cx, cy), obj["side_px"] / 2, colour)
        if cfg.noise > 0:
            frame = frame + noise_rng.normal(0, cfg.noise, size=frame.shape).astype(np.float32)
        video[f] = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    return video


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: int = 25, qp: int = 14, gop: int | None = None) -> None:
    """Encode uint8 ``(F, H, W, 3)`` RGB frames as H.264 mp4 (yuv420p, constant quantiser ``qp``,
    no B-frames, closed GOPs of ``gop`` frames, deterministic), written atomically."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.mp4")
    gop = gop or len(frames)
    try:
        with av.open(str(tmp), "w", format="mp4", options={"fflags": "+bitexact"}) as container:
            stream = container.add_stream("libx264", rate=Fraction(fps))
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            stream.codec_context.thread_count = 1  # multi-threaded x264 is not bit-reproducible
            stream.options = {
                "preset": "veryfast",
                "qp": str(qp),
                "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:open-gop=0:aq-mode=0",
            }
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _make_one(job: tuple[SynthConfig, dict, str]) -> tuple[int, dict, int]:
    cfg, item, out_dir = job
    look = _appearance(cfg, item)
    frames = render_video(cfg, item, look)
    target = Path(out_dir) / item["file"]
    write_mp4(target, frames, cfg.fps, cfg.qp, gop=cfg.quarter)
    return item["index"], look, target.stat().st_size


def _check_decodable(cfg: SynthConfig, out: Path) -> None:
    """Fail early when decord cannot read frames of this size (decord 0.6 mis-copies a few frame
    widths, e.g. 48 and 72 pixels)."""
    import decord

    from harness.data.video import DECODER_ERRORS

    probe = out / f".probe.{os.getpid()}.mp4"
    try:
        write_mp4(probe, np.full((2, cfg.size, cfg.size, 3), 128, np.uint8), cfg.fps, cfg.qp)
        try:
            decord.VideoReader(str(probe), num_threads=1).get_batch([0, 1]).asnumpy()
        except DECODER_ERRORS as e:
            raise ConfigError(
                f"size={cfg.size}: decord cannot decode {cfg.size}x{cfg.size} frames "
                f"({str(e).strip()[-80:]}); choose another size (e.g. 32, 64, 96, 112)"
            ) from None
    finally:
        probe.unlink(missing_ok=True)


def _list_text(plan: list[dict], split: str) -> bytes:
    lines = [f"# synthetic long-range set: PATH LABEL (paths relative to this folder), split {split}"]
    lines += [f"{p['file']} {p['label']}" for p in plan if p["split"] == split]
    return ("\n".join(lines) + "\n").encode()


GENERATOR = "harness.data.synthetic"
SET_FILES = ("train.txt", "val.txt", "test.txt", "classes.json", "meta.json")
"""The files of a set besides its videos (``videos/vid_NNNNN.mp4``)."""


def _read_meta(out: Path, generator: str = GENERATOR) -> dict | None:
    """The set's record (``meta.json``: written first with ``complete: false``, rewritten when the set is done),
    or None when there is none or it is not this generator's."""
    try:
        meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):  # JSONDecodeError, UnicodeDecodeError
        return None
    if not isinstance(meta, dict) or meta.get("generator") != generator or not isinstance(meta.get("params"), dict):
        return None
    return meta


def _generator_of(out: Path) -> str | None:
    """The ``generator`` named by ``out/meta.json``, or None."""
    try:
        meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta.get("generator") if isinstance(meta, dict) and isinstance(meta.get("generator"), str) else None


def _own_videos(out: Path) -> list[Path]:
    videos = out / "videos"
    return sorted(videos.glob("vid_[0-9][0-9][0-9][0-9][0-9].mp4")) if videos.is_dir() else []


def _clear_the_way(out: Path, params: dict, force: bool, generator: str = GENERATOR) -> None:
    """Refuse to write over another set (other parameters: named) or over files this command did not make
    (a user's lists), unless ``force``: then the old set's files are removed first (its lists, record and
    ``videos/vid_NNNNN.mp4``; other files stay)."""
    meta = _read_meta(out, generator)
    if meta is not None:
        old = meta["params"]
        differ = sorted(k for k in {*old, *params} if old.get(k) != params.get(k))
        if differ and not force:
            changes = ", ".join(f"{k} {old.get(k)!r} -> {params.get(k)!r}" for k in differ)
            raise ConfigError(
                f"{out} holds a synthetic set of other parameters ({changes}); writing this one there would mix "
                "the two: give another --out, or --force to replace it (the old set is removed first)"
            )
    else:
        clash = [f for f in SET_FILES if (out / f).exists()] + (["videos/vid_*.mp4"] if _own_videos(out) else [])
        other = _generator_of(out)
        if clash and not force and other:
            raise ConfigError(
                f"{out} holds a synthetic set of another task family ({other}); writing this one there would mix "
                "the two: give another --out, or --force to replace it (the old set is removed first)"
            )
        if clash and not force:
            raise ConfigError(
                f"{out} holds {', '.join(clash)} that this command did not make (no meta.json of a synthetic set): "
                "they would be overwritten; give an empty or new --out, or --force to replace them"
            )
    if force or (meta is not None and meta.get("complete") is False):
        for f in _own_videos(out):
            f.unlink()
        for name in SET_FILES:
            (out / name).unlink(missing_ok=True)


def _existing(out: Path, params: dict, generator: str = GENERATOR, version: int = FORMAT_VERSION) -> dict | None:
    meta = _read_meta(out, generator)
    if meta is None or meta.get("params") != params or meta.get("format_version") != version:
        return None
    if meta.get("complete") is False or not isinstance(meta.get("videos"), list):
        return None
    if not all((out / v["file"]).is_file() for v in meta.get("videos", [])):
        return None
    lists = ["train.txt", "val.txt", "classes.json"] + (["test.txt"] if params["test_fraction"] > 0 else [])
    if not all((out / f).is_file() for f in lists):
        return None
    return meta


def generate_synthetic(
    out_dir: str | os.PathLike,
    num_videos: int = 400,
    num_classes: int = 4,
    size: int = 112,
    frames: int = 64,
    seed: int = 0,
    *,
    val_fraction: float = 0.2,
    test_fraction: float = 0.0,
    workers: int | None = None,
    force: bool = False,
    progress: bool = True,
    **options,
) -> dict:
    """Write the synthetic set into ``out_dir`` (see the module docstring) and return a summary
    ``{"out_dir", "num_videos", "num_train", "num_val", "num_test", "num_classes", "classes", "seconds",
    "bytes", "reused", "train", "val", "test" (None without a test split), "classes_file", "meta_file"}``.

    workers: processes encoding videos in parallel (default: all CPU cores).
    force:   regenerate even when ``out_dir`` already holds a complete set with the same
             parameters (otherwise that set is reused and ``reused`` is True), and replace a set of other
             parameters or list files this function did not make (otherwise refused with a ConfigError
             naming the parameters that differ, or the files): the old set is removed first.
    options: further :class:`SynthConfig` fields (fps, qp, noise, obj_scale).
    """
    cfg = SynthConfig(
        num_videos=num_videos,
        num_classes=num_classes,
        size=size,
        frames=frames,
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        **options,
    )
    out = Path(out_dir)
    params = json.loads(json.dumps(asdict(cfg)))
    t0 = time.perf_counter()
    if not force:
        meta = _existing(out, params)
        if meta is not None:
            return _summary(cfg, out, meta, t0, reused=True)
    _clear_the_way(out, params, force)
    out.mkdir(parents=True, exist_ok=True)
    _check_decodable(cfg, out)
    record = {"generator": GENERATOR, "format_version": FORMAT_VERSION, "params": params, "complete": False}
    atomic_write_json(out / "meta.json", record)  # this command's set, incomplete until rewritten at the end
    plan = _plan(cfg)
    looks = _make_videos([(cfg, item, str(out)) for item in plan], workers, progress)
    _write_lists(cfg, out, plan)
    atomic_write_json(out / "classes.json", _classes_record(cfg))
    meta = _meta_record(cfg, params, plan, looks)
    atomic_write_json(out / "meta.json", meta)
    return _summary(cfg, out, meta, t0, reused=False)


def _summary(cfg: SynthConfig, out: Path, meta: dict, t0: float, reused: bool) -> dict:
    """What :func:`generate_synthetic` returns for the set recorded in ``meta`` (``t0``: when it started)."""
    classes = [c["name"] for c in class_factors(cfg.num_classes)]
    return set_summary(out, meta["videos"], classes, t0, reused, has_test=cfg.test_fraction > 0)


def set_summary(out: Path, videos: list[dict], classes: list[str], t0: float, reused: bool, has_test: bool) -> dict:
    """The summary of a synthetic set of either family in ``out`` (``videos``: meta.json's records; ``t0``: when
    its command started): counts per split, classes, seconds, bytes, whether it was reused, and its files."""
    return {
        "out_dir": str(out),
        "num_videos": len(videos),
        "num_train": sum(v["split"] == "train" for v in videos),
        "num_val": sum(v["split"] == "val" for v in videos),
        "num_test": sum(v["split"] == "test" for v in videos),
        "num_classes": len(classes),
        "classes": classes,
        "seconds": round(time.perf_counter() - t0, 3),
        "bytes": sum((out / v["file"]).stat().st_size for v in videos),
        "reused": reused,
        "train": str(out / "train.txt"),
        "val": str(out / "val.txt"),
        "test": str(out / "test.txt") if has_test else None,
        "classes_file": str(out / "classes.json"),
        "meta_file": str(out / "meta.json"),
    }


def _make_videos(jobs: list[tuple], workers: int | None, progress: bool, make_one=None) -> dict[int, dict]:
    """Render and encode every video (``make_one``, default :func:`_make_one`: ``job -> (index, look, bytes)``)
    in ``workers`` processes (None: all CPU cores), with a progress bar; returns the appearance of each
    video by index."""
    make_one = make_one or _make_one
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    looks: dict[int, dict] = {}
    from harness.data.progress import progress as progress_bar

    bar = progress_bar(len(jobs), "synth videos", "video", enabled=progress)  # a bar on a terminal, else lines
    try:
        if workers == 1:
            for job in jobs:
                i, look, _ = make_one(job)
                looks[i] = look
                bar.update()
        else:
            with _worker_context().Pool(workers) as pool:
                chunk = max(1, min(8, math.ceil(len(jobs) / (4 * workers))))
                for i, look, _ in pool.imap_unordered(make_one, jobs, chunksize=chunk):
                    looks[i] = look
                    bar.update()
    finally:
        bar.close()
    return looks


def _worker_context() -> mp.context.BaseContext:
    """Worker processes that start clean: a fork server (itself a fresh interpreter that imports this module
    once, then forks each worker), else spawn. Never a plain fork of the caller: a caller with other threads
    (torch's, a test runner's) can hold a lock at the moment of the fork, and the child waits on it forever
    (seen: a worker blocked on a futex during the test suite)."""
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        return ctx
    return mp.get_context("spawn")


def _write_lists(cfg: SynthConfig, out: Path, plan: list[dict]) -> None:
    """``train.txt``, ``val.txt`` and (with a test split) ``test.txt``; an old ``test.txt`` goes otherwise."""
    atomic_write_bytes(out / "train.txt", _list_text(plan, "train"))
    atomic_write_bytes(out / "val.txt", _list_text(plan, "val"))
    if cfg.test_fraction > 0:
        atomic_write_bytes(out / "test.txt", _list_text(plan, "test"))
    else:
        (out / "test.txt").unlink(missing_ok=True)


def _classes_record(cfg: SynthConfig) -> dict:
    """The content of ``classes.json``."""
    return {
        "classes": class_factors(cfg.num_classes),
        "factors": {"order": list(ORDERS), "motion": list(MOTIONS[: cfg.num_motions])},
        "label_rule": "label = order_index * num_motions + motion_index",
    }


def _meta_record(cfg: SynthConfig, params: dict, plan: list[dict], looks: dict[int, dict]) -> dict:
    """The complete set's record (``meta.json``): parameters, chance levels and every video's placement."""
    return {
        "generator": GENERATOR,
        "format_version": FORMAT_VERSION,
        "params": params,
        "description": (
            "label = order of two events (A: square, B: disc; each visible during one whole "
            "quarter, in different quarters) x motion direction of the visible object"
        ),
        "chance_levels": chance_levels(cfg.num_classes),
        "sampling_assumption": (
            "exact chance of snippet averaging on the order factor needs U=4 "
            "segment-aligned snippets with (T-1)*interval+1 <= frames/(4*groups)"
        ),
        "max_clip_span": {"train_val": cfg.quarter, "test_groups_2": cfg.quarter // 2},
        "recommended": RECOMMENDED,
        "videos": [{**item, **looks[item["index"]]} for item in plan],
    }
