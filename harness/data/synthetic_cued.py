"""The second embedded task family: labels that need a kernel conditioned on the video.

The first family (:mod:`harness.data.synthetic`) asks *which order* two events came in: a fixed temporal
kernel learns that as well as DSA (both 100 % in the study). Here what decides the label is spread over
segments far apart, so that a kernel over snippets made from the whole video (DSA's) can combine them
where a fixed local one cannot.

Every video has ``F`` frames cut into ``S = 8`` **segments** of ``F / 8`` frames. Objects are drawn still,
each visible during one whole segment, on a dark noisy background (the other segments show only it):
**A**, a red filled square, and **B**, a blue filled disc. Two rules (``rule``):

- ``cued_order`` (the benchmark's): A and B in two *adjacent* segments ``p, p + 1`` (the **pair**), in either
  order, and the **cue**, a second, lone copy of A or of B, in a segment ``q`` at least ``distance`` segments
  from both segments of the pair. Label ``as_cued`` (0) when the pair's first object is the one seen
  twice, ``against_cue`` (1) otherwise: label = order XOR cue.
- ``same``: two objects, each A or B, in segments ``i < j`` with ``j - i >= distance``. Label ``same`` (0) or
  ``different`` (1).

Classes are exactly balanced, and each part (the cue, the order, the kind of either object, the layout)
is drawn balanced and independent of the label: alone, none says anything about it.

**Why a fixed kernel is harder (and, far enough, unable).** The backbones see each snippet alone; only
the aggregators (DSA, static conv, non-local) mix snippets, and the classifier averages the U snippet
scores. With U = 8 snippets (one per segment) and a K = 3 kernel in L layers (the paper's placement in a
ResNet-18: L = 2, in res3 and res4), a **static** conv makes each snippet's features a function of the
snippets ``u - L .. u + L`` only. When the two parts are more than ``2 L`` segments apart (``distance >= 5``)
no snippet's features see both, so the averaged score is a *sum* of a function of one part and a function
of the other, and no such sum computes an XOR: at most 75 % (three of the four cells right), and its
cross-entropy optimum is chance (50 %). To do better a static model must carry one part across the video
through more aggregating layers (the dense placement). **DSA** makes each channel's kernel from the
channel's whole U-long snippet profile (its kernel MLP sees all U snippets): a channel that responds to A
has two bumps in its profile when A is the cue and one otherwise, so its kernel can shift it to u + 1
*when A is seen twice*; where the shifted A meets B, "the repeated object comes first" is a local
coincidence that the 1x1 convolution after it reads: one DSA layer represents the label. A
snippet-averaging model (TSN) sees {A, A, B} or {A, B, B} under both labels alike: exactly at chance on
``cued_order``, as is the order-blind non-local block (for ``same`` the count of A's gives a sum model up
to 75 %, its cross-entropy optimum still chance). Whether DSA *learns* this in a CPU budget is measured,
not argued: ``experiments/embedded_aggregators.yaml`` holds the measured sweep.

**Difficulty.** ``distance`` (below 5 a static conv can see both parts together), ``look_alike`` (draws the
colours of A and B towards their mean: 0 red and blue, near 1 one purple told apart by shape alone),
``cue_bias`` (a first-order signal: the pair's order alone is right in ``(1 + b) / 2`` of the videos, so a model
that combines adjacent snippets can reach that much without the cue, one that sees snippets one by one
cannot; measured because XOR with no such signal is hard to *learn* even where it is representable: a static
conv stayed at chance at distance 1 and 2, 48 epochs), ``noise``; and the training budget, which decides
whether a model leaves the plateau of chance at all.

**Encoding** as the first family (H.264, yuv420p, constant quantiser, no B-frames, closed GOP of one
segment, scene-cut off, single-threaded, bit-exact): each segment starts with an IDR frame, so the
encoding carries nothing across segments; the same seed gives byte-identical files.

**Sampling**: clips must stay inside a segment: ``(T - 1) * interval + 1 <= F / (8 G)`` (``G`` test groups),
e.g. F = 64, T = 2, interval 2 (span 3 <= 4 with G = 2). U = 8 snippets put one snippet in each segment;
other U (the U axis of the ablations) sample the same videos and may miss objects: measured, not assumed.
No flips needed (nothing depends on left/right), though they do not change the label.

Outputs as the first family: ``videos/vid_NNNNN.mp4``, ``train.txt`` / ``val.txt`` [/ ``test.txt``],
``classes.json``, ``meta.json`` (parameters, layout and cue of every video; ``complete: false`` while the
set is being made). A folder holding a set of other parameters (named) or of the other family is refused
without ``force``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from harness.data import synthetic as first
from harness.errors import ConfigError
from harness.results.rundir import atomic_write_json

SEGMENTS = 8
CUES = ("A_first", "B_first")
GENERATOR = "harness.data.synthetic_cued"
FORMAT_VERSION = 1
COLOURS = {"A": (255.0, 60.0, 50.0), "B": (50.0, 100.0, 255.0)}
"""Colours of A and B at ``look_alike = 0``; at ``look_alike = a`` each is ``colour + a * (mean - colour)``."""

BENCHMARK_SET = {
    "num_videos": 800,
    "size": 32,
    "frames": 64,
    "seed": 0,
    "val_fraction": 0.2,
    "test_fraction": 0.2,
    "cue_bias": 0.75,
}
"""The set of the embedded benchmark (experiments/embedded_*.yaml); its difficulty is the grid's
``data synth`` default: see experiments/embedded_aggregators.yaml for the sweep that chose it."""


@dataclass(frozen=True)
class CuedConfig:
    """Parameters of the cued-order set (validated on construction: ``ConfigError``, a ValueError).

    num_videos:    total videos, even (two classes, exactly balanced), >= 8.
    size:          frame side in pixels, even, 32..256.
    frames:        F frames per video, a multiple of 8 (segments), 16..512.
    seed:          everything (labels, layout, colours, noise) derives from it.
    val_fraction, test_fraction: shares of each class in val.txt / test.txt (sum < 1).
    rule:          "cued_order" or "same" (module docstring).
    distance:      fewest segments between the two parts: cued_order, from the cue to either pair segment,
                   1..5; same, between the two objects, 1..7 (5: never within the 5 snippets a 2-layer
                   static conv sees).
    look_alike:    how far the colours of A and B are drawn towards their mean, [0, 1) (0: red vs blue).
    cue_bias:      cued_order: how far the cue leans to A, [0, 1): in each class a share (1 + b) / 2 of the videos
                   have A as the cue (0: balanced, the label independent of every part alone; b > 0: the pair's
                   order alone is right in (1 + b) / 2 of the videos, a signal a local cross-snippet model can
                   learn and a snippet-by-snippet one cannot; the cue alone still says nothing).
    noise:         std of the per-pixel Gaussian noise, 0..64 (0..255 scale).
    fps, qp:       container frame rate; H.264 constant quantiser 0..51.
    obj_scale:     object side / frame side, range (lo, hi), drawn per object, within 0.15..0.5.
    """

    num_videos: int = 800
    size: int = 32
    frames: int = 64
    seed: int = 0
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    rule: str = "cued_order"
    distance: int = 5
    look_alike: float = 0.0
    cue_bias: float = 0.0
    noise: float = 3.0
    fps: int = 25
    qp: int = 14
    obj_scale: tuple[float, float] = (0.3, 0.4)

    def __post_init__(self):
        object.__setattr__(self, "obj_scale", tuple(float(v) for v in self.obj_scale))
        checks = [
            ("num_videos", self.num_videos >= 8 and self.num_videos % 2 == 0, "an even number >= 8"),
            ("size", 32 <= self.size <= 256 and self.size % 2 == 0, "even, 32..256"),
            ("frames", 16 <= self.frames <= 512 and self.frames % SEGMENTS == 0, "a multiple of 8, 16..512"),
            ("rule", self.rule in RULES, f"one of {', '.join(RULES)}"),
            (
                "distance",
                isinstance(self.distance, int) and 1 <= self.distance <= MAX_DISTANCE.get(self.rule, 0),
                f"an integer 1..{MAX_DISTANCE.get(self.rule, '?')} for rule {self.rule!r}",
            ),
            ("look_alike", 0 <= self.look_alike < 1, "in [0, 1)"),
            (
                "cue_bias",
                0 <= self.cue_bias < 1 and (self.cue_bias == 0 or self.rule == "cued_order"),
                "in [0, 1), cued_order only",
            ),
            ("noise", 0 <= self.noise <= 64, "in 0..64"),
            ("qp", 0 <= self.qp <= 51, "in 0..51"),
            ("fps", self.fps >= 1, ">= 1"),
            ("obj_scale", 0.15 <= self.obj_scale[0] <= self.obj_scale[1] <= 0.5, "lo <= hi within 0.15..0.5"),
            (
                "val_fraction/test_fraction",
                0 <= self.val_fraction < 1
                and 0 <= self.test_fraction < 1
                and self.val_fraction + self.test_fraction < 1,
                ">= 0 with a sum < 1",
            ),
        ]
        for name, ok, allowed in checks:
            if not ok:
                value = getattr(self, name, (self.val_fraction, self.test_fraction))
                raise ConfigError(f"{name} = {value!r} is out of range: must be {allowed}")

    @property
    def segment(self) -> int:
        return self.frames // SEGMENTS


RULES = ("same", "cued_order")
CLASSES_OF = {"same": ("same", "different"), "cued_order": ("as_cued", "against_cue")}
MAX_DISTANCE = {"same": SEGMENTS - 1, "cued_order": 5}


def layouts(rule: str, distance: int) -> list[tuple[int, int]]:
    """The places of the label's two far-apart parts. ``same``: every (first object's segment i, second's
    j) with ``j - i >= distance``; ``cued_order``: every (cue segment q, first pair segment p) with the cue at
    least ``distance`` segments from both ``p`` and ``p + 1``."""
    if rule == "same":
        return [(i, j) for i in range(SEGMENTS) for j in range(i + 1, SEGMENTS) if j - i >= distance]
    return [(q, p) for q in range(SEGMENTS) for p in range(SEGMENTS - 1) if min(abs(q - p), abs(q - p - 1)) >= distance]


def chance_levels(rule: str, cue_bias: float = 0.0) -> dict:
    """Accuracies (%) of guessing, and the ceilings of the argument in the module docstring."""
    return {
        "chance_pct": 50.0,
        **({"pair_order_alone_pct": 50.0 * (1 + cue_bias)} if rule == "cued_order" else {}),
        "snippet_averaging_ceiling_pct": 75.0 if rule == "same" else 50.0,
        "local_static_ceiling_pct": 75.0,  # distance >= 5, a K = 3 static conv in 2 layers
        "cross_snippet_ceiling_pct": 100.0,
    }


def _splits(cfg: CuedConfig, per_class: int) -> tuple[int, int]:
    n_val, n_test = round(per_class * cfg.val_fraction), round(per_class * cfg.test_fraction)
    n_val = min(n_val, per_class - 1)
    return n_val, min(n_test, per_class - 1 - n_val)


def _objects(rule: str, label: int, variant: int, spot: tuple[int, int]) -> dict:
    """``{"cue", "order", "segments": {name: segment}, "kinds": {name: "A" | "B"}}`` of one video."""
    if rule == "same":  # variant: the first object's kind; same: the second alike, different: the other one
        first = "AB"[variant]
        second = first if label == 0 else "BA"[variant]
        return {"segments": {"first": spot[0], "second": spot[1]}, "kinds": {"first": first, "second": second}}
    q, p = spot  # cued_order; variant: the cue (0: A seen twice, A_first)
    a_first = (variant == 0) == (label == 0)  # as cued: the repeated object first; against: the other
    return {
        "cue": CUES[variant],
        "order": "A_before_B" if a_first else "B_before_A",
        "segments": {"cue": q, "A": p if a_first else p + 1, "B": p + 1 if a_first else p},
        "kinds": {"cue": "AB"[variant], "A": "A", "B": "B"},
    }


def _plan(cfg: CuedConfig) -> list[dict]:
    """Label, split and objects of every video (cheap, deterministic; classes, variants and layouts
    balanced and drawn independently of each other)."""
    rng = np.random.default_rng([cfg.seed, 0xC0E])
    per_class = cfg.num_videos // 2
    n_val, n_test = _splits(cfg, per_class)
    combos = [(v, spot) for v in range(2) for spot in layouts(cfg.rule, cfg.distance)]
    plan: list[dict] = [{} for _ in range(cfg.num_videos)]
    labels = rng.permutation(np.repeat(np.arange(2), per_class))
    for c in range(2):
        members = np.flatnonzero(labels == c).tolist()
        if cfg.cue_bias:  # a share (1 + b) / 2 of the class has cue A (variant 0); layouts tiled within each cue
            n_a = round(len(members) * (1 + cfg.cue_bias) / 2)
            spots = layouts(cfg.rule, cfg.distance)
            tiled = [(v, spots[k % len(spots)]) for v, n in ((0, n_a), (1, len(members) - n_a)) for k in range(n)]
        else:
            tiled = (combos * (len(members) // len(combos) + 1))[: len(members)]
        chosen = [tiled[i] for i in rng.permutation(len(tiled))]
        for rank, (i, (variant, spot)) in enumerate(zip(members, chosen)):
            split = "train" if rank < per_class - n_val - n_test else "val" if rank < per_class - n_test else "test"
            plan[i] = {
                "index": i,
                "file": f"videos/vid_{i:05d}.mp4",
                "label": c,
                "class": CLASSES_OF[cfg.rule][c],
                "split": split,
                **_objects(cfg.rule, c, variant, spot),
            }
    return plan


def _appearance(cfg: CuedConfig, item: dict) -> dict:
    """Background, and colour, size and place of each object of one video, from ``(seed, index)``."""
    rng = np.random.default_rng([cfg.seed, item["index"], 1])
    s = cfg.size
    mean = np.mean(list(COLOURS.values()), axis=0)
    objects = {}
    for name, kind in item["kinds"].items():
        side = float(rng.uniform(*cfg.obj_scale) * s)
        lo, hi = side / 2 + 1, s - side / 2 - 1
        colour = np.asarray(COLOURS[kind]) + cfg.look_alike * (mean - np.asarray(COLOURS[kind]))
        objects[name] = {
            "shape": "square" if kind == "A" else "disc",
            "segment": item["segments"][name],
            "side_px": round(side, 2),
            "centre_px": [round(float(rng.uniform(lo, hi)), 2), round(float(rng.uniform(lo, hi)), 2)],
            "colour": [round(float(v), 1) for v in colour],
        }
    return {
        "background": [round(float(v), 1) for v in rng.uniform(10, 60, size=3)],
        "gradient": [round(float(v), 2) for v in rng.uniform(-15, 15, size=2)],
        "objects": objects,
    }


def render_video(cfg: CuedConfig, item: dict, look: dict) -> np.ndarray:
    """Frames of one video: uint8 ``(F, size, size, 3)`` RGB."""
    s, seg = cfg.size, cfg.segment
    yy, xx, background = first.canvas(s, look)
    layers = {
        obj["segment"]: first.paint(
            background, obj["shape"], (yy, xx), obj["centre_px"], obj["side_px"] / 2, np.asarray(obj["colour"])
        )
        for obj in look["objects"].values()
    }
    noise_rng = np.random.default_rng([cfg.seed, item["index"], 2])
    video = np.empty((cfg.frames, s, s, 3), np.uint8)
    for f in range(cfg.frames):
        frame = layers.get(f // seg, background)
        if cfg.noise > 0:
            frame = frame + noise_rng.normal(0, cfg.noise, size=frame.shape).astype(np.float32)
        video[f] = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    return video


def _make_one(job: tuple[CuedConfig, dict, str]) -> tuple[int, dict, int]:
    cfg, item, out_dir = job
    look = _appearance(cfg, item)
    target = Path(out_dir) / item["file"]
    first.write_mp4(target, render_video(cfg, item, look), cfg.fps, cfg.qp, gop=cfg.segment)
    return item["index"], look, target.stat().st_size


def classes_record(rule: str) -> dict:
    return {"classes": list(CLASSES_OF[rule]), "task": rule}


def generate_cued(
    out_dir: str | os.PathLike,
    *,
    workers: int | None = None,
    force: bool = False,
    progress: bool = True,
    **params,
) -> dict:
    """Write the cued-order set into ``out_dir`` (module docstring) and return the same summary as
    :func:`harness.data.synthetic.generate_synthetic`. ``params``: :class:`CuedConfig` fields. A complete set
    with the same parameters is reused (``reused``); another set there is refused unless ``force``."""
    cfg = CuedConfig(**params)
    out = Path(out_dir)
    record_params = json.loads(json.dumps(asdict(cfg)))
    if not cfg.cue_bias:  # the default: sets made before the option existed keep their parameters
        record_params.pop("cue_bias")
    t0 = time.perf_counter()
    if not force:
        meta = first._existing(out, record_params, generator=GENERATOR, version=FORMAT_VERSION)
        if meta is not None:
            return _summary(cfg, out, meta, t0, reused=True)
    first._clear_the_way(out, record_params, force, generator=GENERATOR)
    out.mkdir(parents=True, exist_ok=True)
    first._check_decodable(cfg, out)
    record = {"generator": GENERATOR, "format_version": FORMAT_VERSION, "params": record_params, "complete": False}
    atomic_write_json(out / "meta.json", record)
    plan = _plan(cfg)
    looks = first._make_videos([(cfg, item, str(out)) for item in plan], workers, progress, make_one=_make_one)
    first._write_lists(cfg, out, plan)
    atomic_write_json(out / "classes.json", classes_record(cfg.rule))
    meta = {
        **record,
        "complete": True,
        "task": cfg.rule,
        "classes": list(CLASSES_OF[cfg.rule]),
        "layouts": [list(x) for x in layouts(cfg.rule, cfg.distance)],
        "chance": chance_levels(cfg.rule, cfg.cue_bias),
        "recommended": {"num_snippets": SEGMENTS, "frames_per_snippet": 2, "frame_interval": 2, "test_groups": 2},
        "videos": [{**item, **looks[item["index"]]} for item in plan],
    }
    atomic_write_json(out / "meta.json", meta)
    return _summary(cfg, out, meta, t0, reused=False)


def _summary(cfg: CuedConfig, out: Path, meta: dict, t0: float, reused: bool) -> dict:
    classes = list(CLASSES_OF[cfg.rule])
    return first.set_summary(out, meta["videos"], classes, t0, reused, has_test=cfg.test_fraction > 0)
