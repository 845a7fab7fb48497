"""Training with exact resume, then multi-view testing: ``train_and_evaluate(config, run_dir)``.

Contract (relied on by the launcher):
- idempotent: a run whose final.json parses is returned as is;
- resumable: a run directory with a checkpoint continues from it (model, optimiser, scheduler, AMP
  scaler, RNG states, epoch and step inside the epoch), and the rest of the run is a pure function of
  what is on disk — on CPU with deterministic settings the final weights equal an uninterrupted run's;
- writes config.json (once), metrics.jsonl (per epoch), checkpoint.pt (atomic; the previous one is
  kept as checkpoint.prev.pt), log.txt and, last, final.json through ``harness.results.rundir``.

Data order is a pure function of (seed, epoch): the loader (``harness.data.build_loader``, the one
that training, evaluation and the loader benchmark use) permutes with its own generator and the
dataset derives each sample's random offsets / crops from (seed, epoch, index), so neither the
number of workers nor an interruption changes what a step sees.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import math
import os
import sys
import threading
import time
import warnings
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from harness.config import (
    IDENTITY_VERSION,
    DataConfig,
    EvalConfig,
    RunConfig,
    TrainConfig,
    canonical_json,
    describe_diff,
    fingerprint_scope,
    identity_diff,
)
from harness.data import auto_num_workers, build_loader, set_epoch
from harness.data.annotations import AnnotationError, read_classes_json
from harness.engine.checkpoint import (
    CheckpointError,
    gather_rng_states,
    load_checkpoint,
    restore_rng_states,
    save_checkpoint,
)
from harness.engine.distributed import (
    DistributedContext,
    all_gather_objects,
    barrier,
    broadcast_buffers,
    broadcast_object,
    init_distributed,
    seed_rank,
    wrap_model,
)
from harness.engine.evaluate import classification_metrics, predict
from harness.errors import ConfigError, HarnessWarning, RunDirError, UsageError
from harness.measure.environment import describe_environment
from harness.models import create_model
from harness.results.lock import LOCK_FILE
from harness.results.predictions import build_columns, file_sha256, write_predictions
from harness.results.rundir import PREDICTIONS, RunDir

PREV_CHECKPOINT = "checkpoint.prev.pt"
STOP = threading.Event()
"""Set (e.g. by a SIGTERM/SIGUSR1 handler) to make the loop checkpoint at the next step and stop."""


PAUSE_ENV = "HARNESS_PAUSE_AFTER_CHECKPOINT"
"""Fault-injection hook for tests of interruption: ``EPOCH:STEP`` (e.g. ``1:1``) makes the main
process, right after writing the checkpoint of (EPOCH, STEP), write ``PAUSED_MARKER`` in the run
directory and wait there until a stop request (SIGTERM/SIGUSR1 through ``STOP``), a signal that ends
the process, or ``PAUSE_LIMIT_S``. Once per run directory: a resumed run does not pause again. It
lets a test interrupt a run at an exact point instead of racing a fast run on a fast machine."""
PAUSED_MARKER = "paused_after_checkpoint"
PAUSE_LIMIT_S = 600.0


def _pause_after_checkpoint(rd: RunDir, epoch: int, step: int, log) -> None:
    spec = os.environ.get(PAUSE_ENV)
    if not spec:
        return
    try:
        at = tuple(int(v) for v in spec.split(":"))
    except ValueError:
        raise UsageError(f"{PAUSE_ENV}={spec!r}: expected EPOCH:STEP, e.g. 1:1 (or unset it)") from None
    marker = rd.path / PAUSED_MARKER
    if at != (epoch, step) or marker.exists():
        return
    log(f"{PAUSE_ENV}={spec}: paused after the checkpoint of epoch {epoch} step {step}")
    marker.write_text(f"{epoch}:{step}\n")
    deadline = time.time() + PAUSE_LIMIT_S
    while not STOP.is_set() and time.time() < deadline:
        time.sleep(0.05)


class TrainingInterrupted(RuntimeError):
    """Raised after a stop request once the checkpoint is safely on disk; re-running resumes."""


# ---------------------------------------------------------------------------------------------
# data plumbing
def build_train_loader(
    dataset: Dataset, tcfg: TrainConfig, dcfg: DataConfig, seed: int, ctx: DistributedContext, device: torch.device
) -> DataLoader:
    """The training loader of a run: ``harness.data.build_loader`` with the run's settings (shuffled,
    padded shards). ``benchmarks/loader_throughput.py`` times this very call."""
    return build_loader(
        dataset,
        tcfg.batch_size,
        shuffle=True,
        seed=seed,
        num_workers=dcfg.num_workers,
        rank=ctx.rank,
        world_size=ctx.world_size,
        device=device,
    )


@dataclass
class _Data:
    train: Dataset | None
    val: Dataset | None
    test: Dataset | None
    num_classes: int
    factors: dict | None
    normalize: object
    classes_listed: int | None = None  # entries of the classes file (classes.json), when there is one


def build_data(data: DataConfig, ev: EvalConfig, num_snippets: int, num_frames: int, seed: int) -> _Data:
    """Datasets for the three splits from ``harness.data`` (train: random offsets, crop and flip;
    val: centred snippets, one centre crop of ``data.size``; test: ``test_groups`` interleaved groups x
    ``crops`` crops of the test size, ``EvalConfig.test_crop``)."""
    from harness.data.sampling import SnippetSampler
    from harness.data.transforms import eval_transform, normalize, train_transform
    from harness.data.video import VideoDataset

    def make(path, mode):
        if not path:
            return None
        sampler = SnippetSampler(
            num_snippets,
            num_frames,
            data.frame_interval,
            mode,
            **({"test_groups": ev.test_groups} if mode == "test" else {}),
        )
        if mode == "train":
            transform = train_transform(
                data.size,
                flip=data.flip,
                crop=data.crop,
                area=data.crop_area,
                scales=data.scales if data.crop == "multiscale" else None,
            )
        elif mode == "test":  # the test crop (eval.size / eval.resize; None: the training ones)
            size, resize = ev.test_crop(data)
            transform = eval_transform(size, resize=resize, crops=ev.crops)
        else:
            transform = eval_transform(data.size, resize=data.resize, crops=1)
        extra = {"class_index": data.classes} if data.format == "kinetics_csv" and data.classes else {}
        if data.format == "frames":
            extra["frame_template"] = data.frame_template
        root = data.root if data.root else str(Path(path).resolve().parent)
        return VideoDataset(
            path,
            root,
            sampler,
            transform=transform,
            format=data.format,
            on_error=data.on_error,
            decode_threads=data.decode_threads,
            seed=seed,
            cache_decoded=data.cache_decoded,
            video_backend=data.video_backend,
            replace_skipped=mode == "train",  # val / test: an unreadable video is left out, never replaced
            **extra,
        )

    train, val, test = make(data.train, "train"), make(data.val, "val"), make(data.test, "test")
    labels = [lab for ds in (train, val, test) if ds is not None for lab in ds.labels]
    if not labels:
        raise ConfigError("no data: set data.train and/or data.test")
    num_classes, factors, classes_listed = max(labels) + 1, None, None
    ref = next(p for p in (data.train, data.val, data.test) if p)
    classes_file = Path(ref).parent / "classes.json"
    splits = {s: ds for s, ds in (("train", train), ("val", val), ("test", test)) if ds is not None}
    if classes_file.exists():  # the one reader of classes.json (names the file and entry); labels must fit it
        names, factors = read_classes_json(classes_file)
        num_classes = classes_listed = len(names)
        for ds in splits.values():
            top = max(ds.records, key=lambda r: r.label)
            if top.label >= num_classes:
                raise AnnotationError(
                    top.source,
                    top.line,
                    f"label {top.label}, but {classes_file} lists {num_classes} classes (0..{num_classes - 1})",
                )
    present = {s: sorted(set(ds.labels)) for s, ds in splits.items()}
    if len({len(v) for v in present.values()}) > 1:  # accepted (a small split may lack a class), but said
        counts = ", ".join(f"data.{s} {len(v)}" for s, v in present.items())
        missing = {s: sorted(set(range(num_classes)) - set(v)) for s, v in present.items()}
        first = next(s for s, v in missing.items() if v)
        warnings.warn(
            f"the splits have labels of different numbers of classes ({counts}; data.{first} has none of class "
            f"{', '.join(map(str, missing[first][:5]))}{', ...' if len(missing[first]) > 5 else ''}): "
            "accuracies per class cover only the classes a split has",
            HarnessWarning,
            stacklevel=2,
        )

    def norm(x: torch.Tensor) -> torch.Tensor:  # (N, V*U, C, T, H, W) uint8 -> normalised float
        return normalize(x)

    return _Data(train, val, test, num_classes, factors, norm, classes_listed)


def split_manifest(dataset, path: str, *, skipped: int, classes_listed: int | None) -> dict:
    """One split's entry of the dataset manifest (final.json / eval json ``manifest``): the list file and
    its full SHA-256, its listed videos (``rows``), how many were read and found unreadable, and its class
    count (the classes file's entries when there is one, else the list's labels up to the largest). A list
    file that can no longer be read (moved while the run trained) gets sha256 None: the run's result stands."""
    try:
        sha256 = file_sha256(path)
    except OSError:
        sha256 = None
    return {
        "list": str(path),
        "sha256": sha256,
        "rows": len(dataset),
        "readable": len(dataset) - skipped,
        "skipped": skipped,
        "num_classes": classes_listed if classes_listed is not None else max(dataset.labels) + 1,
    }


def dataset_manifest(data: _Data, dcfg: DataConfig, test: dict | None, unreadable: dict[str, set[int]]) -> dict:
    """The manifest of a training run's splits (those present). train / val: ``skipped`` counts the distinct
    videos found unreadable during the run (``unreadable``, kept in checkpoints across resumes), ``readable``
    the others; test: exactly the test's counts."""
    out = {}
    for split in ("train", "val", "test"):
        dataset = getattr(data, split)
        if dataset is None:
            continue
        bad = test["num_skipped"] if split == "test" and test is not None else len(unreadable.get(split, ()))
        out[split] = split_manifest(dataset, getattr(dcfg, split), skipped=bad, classes_listed=data.classes_listed)
    return out


# ---------------------------------------------------------------------------------------------
# optimisation
def lr_factor(step: int, steps_per_epoch: int, cfg: TrainConfig) -> float:
    """Multiplier of the peak lr at optimiser step ``step``: linear warm-up from warmup_start_factor,
    then step decay (x gamma at each milestone epoch) or cosine to 0."""
    epoch = step / max(steps_per_epoch, 1)
    if epoch < cfg.warmup_epochs:
        return cfg.warmup_start_factor + (1 - cfg.warmup_start_factor) * epoch / cfg.warmup_epochs
    if cfg.schedule == "step":
        return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    span = max(cfg.epochs - cfg.warmup_epochs, 1e-8)
    return 0.5 * (1 + math.cos(math.pi * min((epoch - cfg.warmup_epochs) / span, 1.0)))


def build_optimizer(model: nn.Module, cfg: TrainConfig, lr: float) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov); weight decay on conv/linear weights only, not on BN or biases."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.dim() <= 1 else decay).append(p)
    return torch.optim.SGD(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
    )


def _device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("train.device=cuda but no CUDA device is visible; use train.device=auto or cpu")
        return torch.device("cuda")
    return torch.device("cpu")


def resolve_amp(setting: str, device: torch.device) -> tuple[torch.dtype | None, str]:
    """(autocast dtype or None, its name) for ``train.amp`` on ``device``; the name is what final.json
    records as ``train.amp_used``. ``auto``: bf16 on a CUDA device that runs it natively (Ampere and
    later), else fp16 (with a GradScaler); CPU: none. An explicit bf16 / fp16 is used as given on
    CUDA; on CPU every setting is none (autocast there is not what the recipe measures)."""
    if device.type != "cuda" or setting == "none":
        return None, "none"
    if setting == "auto":
        setting = "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[setting], setting


def resolve_deterministic(setting: bool | str, device: torch.device) -> bool:
    """``train.deterministic`` on ``device``: ``auto`` is True on CPU (where exact resume is promised and
    tested) and False on CUDA (cudnn.benchmark picks the fastest kernels)."""
    return device.type == "cpu" if setting == "auto" else bool(setting)


def set_determinism(deterministic: bool, device: torch.device) -> bool:
    """Apply it process-wide (both ways, so that an earlier run in this process leaves nothing behind);
    returns whether cudnn.benchmark is on."""
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic and device.type == "cuda"
    return torch.backends.cudnn.benchmark


def ddp_options(cfg: TrainConfig) -> dict:
    """DistributedDataParallel options of a run: gradients live in the all-reduce buckets (no copy);
    a static graph (the model uses every parameter in every step) unless gradient accumulation
    (``no_sync``) or ``torch.compile`` is involved, which static_graph does not support reliably."""
    return {"gradient_as_bucket_view": True, "static_graph": cfg.grad_accum == 1 and not cfg.compile}


class _LossSum:
    """The epoch's summed training loss (loss x videos), kept on the device in float64: adding a step's
    loss costs no host synchronisation; reading it (logging, checkpoints, the epoch's end) is one. The
    sums equal Python's ``loss.item() * n`` accumulated in float64, bit for bit."""

    def __init__(self, device: torch.device):
        self.total = torch.zeros((), dtype=torch.float64, device=device)

    def reset(self, value: float = 0.0) -> None:
        self.total.fill_(value)

    def add(self, loss: torch.Tensor, n: int) -> None:
        self.total += loss.detach().double() * n

    def value(self) -> float:
        return float(self.total)


class _NonFinite:
    """The first optimiser step whose training loss was NaN or inf, kept on the device (no host sync per
    step): ``note`` costs two element-wise ops; ``read`` (one sync) only once the loss sum, read anyway at a
    progress line, a checkpoint or the epoch's end, is no longer finite."""

    def __init__(self, device: torch.device):
        self.step = torch.zeros((), dtype=torch.int64, device=device)  # 0: none yet (steps count from 1)
        self.loss = torch.zeros((), dtype=torch.float32, device=device)

    def note(self, loss: torch.Tensor, global_step: int) -> None:
        new = (self.step == 0) & ~torch.isfinite(loss.detach())
        self.step = torch.where(new, self.step.new_full((), global_step), self.step)
        self.loss = torch.where(new, loss.detach().float(), self.loss)

    def read(self) -> tuple[int, float]:
        return int(self.step), float(self.loss)


class _Diverged(Exception):
    """Raised inside the training loop (on every rank at once) when the loss turned non-finite and
    ``train.stop_on_nonfinite`` is on: the run ends as diverged."""


def diverged_record(global_step: int, loss: float, steps_per_epoch: int, stopped: bool) -> dict:
    """final.json's ``diverged``: where the training loss first turned NaN / inf. ``epoch`` 0-based (as
    metrics.jsonl), ``step`` 1-based within it (as the log's ``epoch E step S/N``), ``global_step`` the
    optimiser steps so far, ``loss`` "nan" | "inf" | "-inf" (JSON has no such numbers), ``stopped``."""
    epoch, step = divmod(global_step - 1, max(steps_per_epoch, 1))
    return {
        "epoch": epoch,
        "step": step + 1,
        "global_step": global_step,
        "loss": "nan" if math.isnan(loss) else ("inf" if loss > 0 else "-inf"),
        "stopped": stopped,
    }


def diverged_text(record: dict) -> str:
    """``training loss nan at epoch 1, step 2 (optimiser step 2)``: the record in the log's terms."""
    return (
        f"training loss {record['loss']} at epoch {record['epoch'] + 1}, step {record['step']} "
        f"(optimiser step {record['global_step']})"
    )


# ---------------------------------------------------------------------------------------------
LOGGER = logging.getLogger("harness.train")
"""The training log: rank 0's lines, written to the run's log.txt and (``echo``) to stdout while a run
trains, and passed on to the handlers of the logging tree like any library logger's."""


class _RunLogHandler(logging.Handler):
    """A handler of ``LOGGER`` for one run: log.txt, or stdout (records logged with ``echo=False``
    stay out of it, e.g. step lines while a progress bar is drawn)."""

    def __init__(self, rd: RunDir | None):
        super().__init__(logging.INFO)
        self.rd = rd
        self.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            if self.rd is not None:
                self.rd.log(line)
            elif getattr(record, "echo", True):
                print(line, flush=True)
        except Exception:  # logging's own rule: a handler never raises into the program
            self.handleError(record)


class _Log:
    """Rank 0's log of a run: ``log(msg)`` is a line of ``LOGGER``; ``scalars`` / ``hparams`` also go to the
    sinks of ``train.log_to`` (TensorBoard under tb/, W&B under wandb/). Ranks > 0 write nothing. Handlers
    and sinks live until :meth:`close` (``train_and_evaluate`` closes them however it ends)."""

    active: list[_Log] = []

    def __init__(self, rd: RunDir, ctx: DistributedContext, echo: bool):
        self.rd, self.ctx, self.echo = rd, ctx, echo
        self.handlers: list[logging.Handler] = []
        self.sinks: dict[str, object] = {}
        if ctx.is_main:
            self.handlers = [_RunLogHandler(rd)] + ([_RunLogHandler(None)] if echo else [])
            for h in self.handlers:
                LOGGER.addHandler(h)
            if LOGGER.getEffectiveLevel() > logging.INFO:
                LOGGER.setLevel(logging.INFO)
        _Log.active.append(self)

    def __call__(self, msg: str, *, echo: bool = True) -> None:
        if self.ctx.is_main:
            LOGGER.info(msg, extra={"echo": echo})

    def open_sinks(self, names: tuple[str, ...], cfg: dict, purge_step: int | None) -> None:
        """Start the sinks of ``train.log_to`` (rank 0), continuing a resumed run's: TensorBoard drops
        its earlier events from ``purge_step`` on."""
        if not self.ctx.is_main:
            return
        if "tensorboard" in names:
            from torch.utils.tensorboard import SummaryWriter

            self.sinks["tensorboard"] = SummaryWriter(str(self.rd.path / "tb"), purge_step=purge_step)
        if "wandb" in names:
            import wandb

            self.sinks["wandb"] = wandb.init(
                project=os.environ.get("WANDB_PROJECT", "dsa-harness"),
                name=str(cfg.get("run_id") or self.rd.run_id),
                group=cfg.get("grid"),
                dir=str(self.rd.path),
                config=cfg,
                mode=os.environ.get("WANDB_MODE", "offline"),
                reinit="create_new",
                settings=wandb.Settings(console="off"),  # our lines are in log.txt; stdout stays ours
            )

    def scalars(self, values: dict, step: int) -> None:
        """Numbers (``"train/loss": 0.3``, ...) at optimiser step ``step`` to every sink."""
        values = {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if "tensorboard" in self.sinks:
            for k, v in values.items():
                self.sinks["tensorboard"].add_scalar(k, v, step)
        if "wandb" in self.sinks:
            self.sinks["wandb"].log(values, step=step)

    def hparams(self, hparams: dict, metrics: dict) -> None:
        """The run's settings with its final numbers (TensorBoard's HPARAMS tab; W&B's run summary)."""
        metrics = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if "tensorboard" in self.sinks:
            plain = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in hparams.items()}
            self.sinks["tensorboard"].add_hparams(plain, {f"hparam/{k}": v for k, v in metrics.items()}, run_name=".")
        if "wandb" in self.sinks:
            self.sinks["wandb"].summary.update(metrics)

    def close(self, failed: bool = False) -> None:
        for h in self.handlers:
            LOGGER.removeHandler(h)
            h.close()
        self.handlers = []
        if "tensorboard" in self.sinks:
            self.sinks.pop("tensorboard").close()
        if "wandb" in self.sinks:
            self.sinks.pop("wandb").finish(exit_code=1 if failed else 0)
        if self in _Log.active:
            _Log.active.remove(self)

    @staticmethod
    def scoped(fn):
        """Close the logs ``fn`` opened when it returns or raises (so a process running runs in turn never
        writes one run's lines into another's log.txt)."""

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            before = list(_Log.active)
            failed = True
            try:
                out = fn(*args, **kwargs)
                failed = False
                return out
            finally:
                for log in [g for g in _Log.active if g not in before]:
                    log.close(failed=failed)

        return wrapper


def _check_sinks(names: tuple[str, ...]) -> None:
    """Refuse (every rank, before anything runs) a sink whose optional package is not installed."""
    import importlib.util

    for name, module in (("tensorboard", "tensorboard"), ("wandb", "wandb")):
        if name in names and importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"train.log_to={name}: the {module} package is not installed: pip install 'dsa-harness[{name}]' "
                f"(or drop {name} from train.log_to)"
            )


def _peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this process: on CUDA the allocator's max_memory_allocated on ``device`` (since the
    last reset: the epoch's), elsewhere the process's peak resident set (ru_maxrss, over its life; loader
    workers not included). Reads host-side counters: no device sync."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def _hms(seconds: float) -> str:
    seconds = max(int(round(seconds)), 0)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class _StepClock:
    """Where a step's time goes, with no host sync of its own: the loader wait is the host clock around
    ``next(loader)``; the rest of the wall time between two points where the loop reads the device anyway
    (a progress line's loss, the epoch's end) is compute. ``interval`` returns (wall s, data s, steps)
    since the previous call; the epoch's totals are kept too."""

    def __init__(self) -> None:
        self.start_epoch(time.perf_counter())

    def start_epoch(self, now: float) -> None:
        self.epoch_t0 = self.mark = now
        self.epoch_data = self.mark_data = 0.0
        self.epoch_steps = self.mark_steps = 0

    def data(self, seconds: float) -> None:
        self.epoch_data += seconds
        self.mark_data += seconds

    def step(self) -> None:
        self.epoch_steps += 1
        self.mark_steps += 1

    def interval(self, now: float) -> tuple[float, float, int]:
        out = (now - self.mark, self.mark_data, self.mark_steps)
        self.mark, self.mark_data, self.mark_steps = now, 0.0, 0
        return out


def _stored_identity(record: dict) -> dict:
    """The identity a config.json was written with: its sections resolved again, with the input
    fingerprints it recorded (not today's files). Records of the earlier identity scheme (no
    ``identity_version``) have no fingerprints: their sections alone are compared."""
    ident = RunConfig.from_dict(record).identity()
    if record.get("identity_version") == IDENTITY_VERSION and isinstance(record.get("inputs"), dict):
        ident["inputs"] = record["inputs"]
    else:
        ident.pop("inputs", None)
        ident.pop("identity_version", None)
    return ident


RUN_FILES = (
    "config.json",
    "metrics.jsonl",
    "final.json",
    PREDICTIONS,
    "checkpoint.pt",
    PREV_CHECKPOINT,
    "log.txt",
    "error.json",
    "job.json",
    PAUSED_MARKER,
)
"""Names the engine writes in a run folder: in a folder without config.json they belong to someone else."""


@fingerprint_scope()  # its identity checks look at the videos once
def open_run_dir(
    config: dict | RunConfig, run_dir: str | Path, *, force: bool = False
) -> tuple[RunDir, RunConfig, dict | None]:
    """Check that ``run_dir`` can take ``config`` and return (run dir, resolved config, final record
    or None). A folder holding another run (different resolved config, or the same config over
    changed input files) is refused with ``RunDirError`` naming the keys that differ; a finished run
    of the same config returns its final record (nothing is redone). A non-empty folder without
    config.json holds files the harness did not make: refused, unless ``force`` (then files of other
    names stay where they are; a file the run would write is still refused, never overwritten)."""
    rc = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
    given = config if isinstance(config, dict) else {}
    rd = RunDir(run_dir)
    if rd.path.exists() and not rd.path.is_dir():
        raise RunDirError(f"{rd.path} is a file, not a run folder; give another --out")
    if rd.path.is_dir() and not rd.config_path.exists():
        foreign = sorted(p.name for p in rd.path.iterdir() if not p.name.startswith(".") and p.name != LOCK_FILE)
        clash = [n for n in foreign if n in RUN_FILES]
        if clash or (foreign and not force):
            raise RunDirError(
                f"{rd.path} holds files the harness did not make ({', '.join((clash or foreign)[:4])}"
                f"{', ...' if len(clash or foreign) > 4 else ''}) and no config.json; "
                + (
                    "they would be overwritten: give another --out"
                    if clash
                    else "give an empty or new --out, or --force"
                )
            )
    new = rc.identity()
    on_disk = None
    if rd.config_path.exists():
        try:
            on_disk = rd.read_config()
            if not isinstance(on_disk, dict):
                raise ValueError("not a JSON object")
            old = _stored_identity(on_disk)
        except (ValueError, OSError) as e:
            raise RunDirError(
                f"{rd.config_path}: not a run config this harness can read ({e}); use another --out folder"
            ) from None
        cmp_new = {k: v for k, v in new.items() if k in old}
        keys = identity_diff(old, cmp_new)
        if keys:
            raise RunDirError(
                f"{rd.path} holds another run ({describe_diff(old, cmp_new, keys)}); use another "
                "--out folder, or the run's own settings to resume or re-read it"
            )
    for record in (given, on_disk or {}):
        stored = record.get("run_id")
        if stored and record.get("identity_version") == IDENTITY_VERSION and stored != rc.run_id:
            keys = identity_diff(_stored_identity(record), new)
            raise RunDirError(
                f"{rd.path}: run {stored} now resolves to run id {rc.run_id} "
                f"({describe_diff(_stored_identity(record), new, keys) or 'harness defaults changed'}); "
                "its inputs or the harness changed since it was configured: submit it again"
            )
    return rd, rc, rd.read_final()


@_Log.scoped
def train_and_evaluate(
    config: dict | RunConfig,
    run_dir: str | Path,
    *,
    echo: bool = True,
    progress: bool | None = None,
    force: bool = False,
) -> dict:
    """Train ``config`` (a run config dict or ``RunConfig``, see harness/config.py) in ``run_dir``,
    resuming if possible; then test. Returns the final record (also written to final.json). A
    finished run of the same config is returned as is; a folder of another run, or of files the harness
    did not make, is refused (see :func:`open_run_dir`)."""
    rd, rc, done = open_run_dir(config, run_dir, force=force)
    if done is not None:
        return done
    rd.create()
    carried = {k: v for k, v in (config if isinstance(config, dict) else {}).items() if k in ("grid", "resources")}
    on_disk = rd.read_config() if rd.config_path.exists() else None
    carried = {**{k: v for k, v in (on_disk or {}).items() if k in ("grid", "resources")}, **carried}
    cfg = rc.record(**carried)
    tcfg, dcfg, ecfg = rc.train, rc.data, rc.eval
    device = _device(tcfg)
    ctx = init_distributed(device.type)
    device = ctx.device  # cuda:(local_rank % visible devices), passed explicitly everywhere
    if device.type == "cuda":  # final.json's train.peak_mem_gb is this run's peak, not the process's
        torch.cuda.reset_peak_memory_stats()
    _check_sinks(tcfg.log_to)
    log = _Log(rd, ctx, echo)
    if ctx.is_main and on_disk != cfg:  # config.json is always the fully resolved config
        rd.write_config(cfg)
    if tcfg.threads:
        torch.set_num_threads(tcfg.threads)
    deterministic = resolve_deterministic(tcfg.deterministic, device)
    cudnn_benchmark = set_determinism(deterministic, device)
    amp_dtype, amp_used = resolve_amp(tcfg.amp, device)
    workers = dcfg.num_workers if dcfg.num_workers is not None else auto_num_workers()
    runtime = {  # what the settings "auto" resolved to here (final.json, checkpoints, log)
        "amp_used": amp_used,
        "deterministic_used": deterministic,
        "cudnn_benchmark": cudnn_benchmark,
        "num_workers": workers,
    }
    seed = cfg["seed"]
    started = time.time()

    mcfg = rc.model
    data = build_data(dcfg, ecfg, mcfg.num_snippets, mcfg.num_frames, seed)
    if data.num_classes > mcfg.num_classes:
        raise ConfigError(
            f"model.num_classes={mcfg.num_classes}, but the data has labels up to "
            f"{data.num_classes - 1} ({dcfg.annotation}); set model.num_classes >= {data.num_classes}"
        )
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    model = create_model(mcfg).to(device)  # the same initial weights on every rank
    if tcfg.channels_last:
        model.set_channels_last()
    model.set_activation_checkpointing(tcfg.activation_checkpointing)
    seed_rank(seed, ctx)  # then per-rank streams (dropout); data order does not use them
    ddp_model = wrap_model(model, ctx, **ddp_options(tcfg))
    train_model = torch.compile(ddp_model) if tcfg.compile else ddp_model  # evaluation: `model`, eager
    global_batch = tcfg.batch_size * ctx.world_size * tcfg.grad_accum
    peak_lr = tcfg.lr_for(global_batch)
    optimizer = build_optimizer(model, tcfg, peak_lr)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype is torch.float16)

    train_loader = (
        build_train_loader(data.train, tcfg, replace(dcfg, num_workers=workers), seed, ctx, device)
        if data.train is not None
        else None
    )
    batches_per_epoch = len(train_loader) if train_loader is not None else 0  # fresh: starts at position 0
    steps_per_epoch = batches_per_epoch // tcfg.grad_accum
    if tcfg.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, tcfg.max_steps_per_epoch)
    if data.train is not None and steps_per_epoch < 1:
        raise ConfigError(
            f"{len(data.train)} training videos give no full step of batch {tcfg.batch_size} x "
            f"accumulation {tcfg.grad_accum} per process: lower train.batch_size or train.grad_accum"
        )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, steps_per_epoch, tcfg))

    start_epoch, start_step = 0, 0
    unreadable: dict[str, set[int]] = {"train": set(), "val": set()}  # distinct list positions found unreadable
    attempts, time_before = 1, 0.0  # attempts so far and their wall time up to their last checkpoint
    diverged: dict | None = None  # where the loss first turned non-finite (diverged_record)
    identity_sha256 = "sha256:" + hashlib.sha256(canonical_json(rc.identity()).encode()).hexdigest()
    state = _load_resume_state(rd, log, ctx, run_id=rc.run_id, identity_sha256=identity_sha256)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler.is_enabled() and state["scaler"]:  # empty when saved without fp16 (CPU, bf16, none)
            scaler.load_state_dict(state["scaler"])
        restore_rng_states(state, ctx, seed)
        start_epoch, start_step = state["epoch"], state["step"]
        for split, found in (state.get("unreadable") or {}).items():  # (older checkpoints: none recorded)
            unreadable.setdefault(split, set()).update(int(i) for i in found)
        diverged = state.get("diverged")  # train.stop_on_nonfinite false: found in an earlier attempt
        elapsed = state.get("elapsed") or {"attempts": 1, "wall_time_s": 0.0}  # (older checkpoints: unknown)
        attempts, time_before = int(elapsed["attempts"]) + 1, float(elapsed["wall_time_s"])
        log(f"resumed from checkpoint: epoch {start_epoch}, step {start_step} (attempt {attempts})")
        before = state.get("runtime") or {}
        changed = {k: (before[k], v) for k, v in runtime.items() if k in before and before[k] != v}
        if changed:
            log(
                "WARNING: this process resolves the run's auto settings otherwise than the one that wrote the "
                "checkpoint: " + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items())
            )
    else:
        log(
            f"start: {mcfg.name} ({mcfg.flavour} R{mcfg.depth}, aggregator {mcfg.aggregator}), "
            f"{len(data.train) if data.train else 0} train videos, {data.num_classes} classes, "
            f"global batch {global_batch}, peak lr {peak_lr:.4g}, device {device}, world {ctx.world_size}"
        )
    log(
        f"runtime: amp {amp_used} (train.amp={tcfg.amp}), deterministic {deterministic} "
        f"(train.deterministic={tcfg.deterministic}), cudnn.benchmark {cudnn_benchmark}, {workers} loader "
        f"workers, channels_last {tcfg.channels_last}, activation checkpointing "
        f"{','.join(tcfg.activation_checkpointing) or 'none'}, compile {tcfg.compile}"
    )

    if ctx.is_main:  # epochs at or after the resume point are redone: drop their old lines
        rd.truncate_metrics(keep_epochs_below=start_epoch)
    log.open_sinks(tcfg.log_to, cfg, purge_step=start_epoch * steps_per_epoch + start_step if state else None)

    running = {"loss_n": 0, "seen": 0}  # this epoch's counts so far (saved mid-epoch, with the loss sum)
    loss_sum = _LossSum(device)
    nonfinite = _NonFinite(device)

    def check_finite(total: float | None, collective: bool = True) -> None:
        """``total``: this rank's loss sum, just read (None: read it). Once it is not finite (on any rank,
        gathered where ``collective``), note where the loss first turned so, and stop the run
        (``train.stop_on_nonfinite``) on every rank at once."""
        nonlocal diverged
        total = loss_sum.value() if total is None else total
        found = (
            all_gather_objects(nonfinite.read() if not math.isfinite(total) else None, ctx)
            if collective
            else ([nonfinite.read()] if not math.isfinite(total) else [None])
        )
        found = [f for f in found if f is not None and f[0] > 0]
        if not found:
            return
        if diverged is None:
            diverged = diverged_record(*min(found), steps_per_epoch, tcfg.stop_on_nonfinite)
            log(
                f"DIVERGED: {diverged_text(diverged)}; "
                + (
                    "train.stop_on_nonfinite=true: the run ends as diverged (no test; lower train.base_lr, "
                    "or set train.clip_grad_norm)"
                    if tcfg.stop_on_nonfinite
                    else "train.stop_on_nonfinite=false: training goes on, the record will say diverged"
                )
            )
        if tcfg.stop_on_nonfinite:
            raise _Diverged(diverged_text(diverged))

    def epoch_sums() -> dict:
        return {"loss_sum": loss_sum.value(), **running}

    def checkpoint(epoch: int, step: int) -> None:
        if step:  # mid-epoch: never a checkpoint of a diverged run's weights (the epoch's end checked already)
            check_finite(None)
        rngs = gather_rng_states(ctx)  # every rank's generators, so that each resumes its own
        if ctx.is_main:
            if rd.checkpoint_path.exists():
                rd.checkpoint_path.replace(rd.path / PREV_CHECKPOINT)
            save_checkpoint(
                rd.checkpoint_path,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "rng": rngs[0],
                    "rng_ranks": rngs,
                    "epoch": epoch,
                    "step": step,
                    "epoch_sums": epoch_sums() if step else None,
                    "runtime": runtime,
                    "elapsed": {"attempts": attempts, "wall_time_s": time_before + time.time() - started},
                    "unreadable": {k: sorted(v) for k, v in unreadable.items()},  # distinct, for the manifest
                    "format": 1,
                    "diverged": diverged,
                    "run_id": rc.run_id,  # whose checkpoint it is: a resume refuses another run's
                    "identity_sha256": identity_sha256,
                },
            )
            _pause_after_checkpoint(rd, epoch, step, log)
        barrier(ctx)

    show = sys.stderr.isatty() if progress is None else progress
    show = show and ctx.is_main
    U = mcfg.num_snippets
    clips_per_step = tcfg.batch_size * tcfg.grad_accum * U * ctx.world_size
    clock, epoch_walls = _StepClock(), []  # epoch_walls: whole epochs (validation included) in this process
    stopped = False  # the loss turned non-finite and train.stop_on_nonfinite ended the training
    try:
        if data.train is not None:
            for epoch in range(start_epoch, tcfg.epochs):
                first = start_step if epoch == start_epoch else 0
                set_epoch(train_loader, epoch, start=first * tcfg.batch_size * tcfg.grad_accum)
                ddp_model.train()
                t0 = time.time()
                clock.start_epoch(time.perf_counter())
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                sums = state.get("epoch_sums") if state is not None and epoch == start_epoch and first else None
                sums = sums or {"loss_sum": 0.0, "loss_n": 0, "seen": 0}
                loss_sum.reset(sums["loss_sum"])
                running.update(loss_n=sums["loss_n"], seen=sums["seen"])
                log_every = tcfg.log_every_steps or max(steps_per_epoch // 4, 1)  # reading the loss is a host sync
                bar = _bar(show, steps_per_epoch, first, f"epoch {epoch + 1}/{tcfg.epochs}")
                it = iter(train_loader)
                for step in range(first, steps_per_epoch):
                    optimizer.zero_grad(set_to_none=True)
                    for micro in range(tcfg.grad_accum):
                        waited = time.perf_counter()
                        clips, labels, _ = next(it)
                        clock.data(time.perf_counter() - waited)
                        x = data.normalize(clips.to(device, non_blocking=True))
                        y = labels.to(device, non_blocking=True)
                        sync = micro == tcfg.grad_accum - 1 or not ctx.enabled
                        with ddp_model.no_sync() if not sync else contextlib.nullcontext():
                            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                                loss = F.cross_entropy(train_model(x), y)
                            scaler.scale(loss / tcfg.grad_accum).backward()
                        loss_sum.add(loss, len(y))
                        nonfinite.note(loss, epoch * steps_per_epoch + step + 1)
                        running["loss_n"] += len(y)
                        running["seen"] += len(y)
                    if tcfg.clip_grad_norm:
                        scaler.unscale_(optimizer)
                        nn.utils.clip_grad_norm_(model.parameters(), tcfg.clip_grad_norm)
                    scaler.step(optimizer)
                    scaler.update()
                    scheduler.step()
                    clock.step()
                    if bar is not None:
                        bar.update(1)
                    if ctx.is_main and (step + 1) % log_every == 0:
                        mean_loss = loss_sum.value() / max(running["loss_n"], 1)  # the sync the timing rests on
                        if ctx.world_size == 1 and diverged is None:  # (several ranks: at checkpoints, epoch ends)
                            check_finite(mean_loss, collective=False)
                        lr = scheduler.get_last_lr()[0]
                        wall, waited, steps = clock.interval(time.perf_counter())
                        per_step = (time.perf_counter() - clock.epoch_t0) / max(clock.epoch_steps, 1)
                        eta_epoch = per_step * (steps_per_epoch - step - 1)
                        later = tcfg.epochs - epoch - 1
                        eta_run = eta_epoch + later * (
                            np.mean(epoch_walls) if epoch_walls else per_step * steps_per_epoch
                        )
                        speed = clips_per_step * steps / max(wall, 1e-9)
                        mem = _peak_memory_mb(device)
                        log(
                            f"epoch {epoch + 1} step {step + 1}/{steps_per_epoch} loss {mean_loss:.4f} lr {lr:.4g} | "
                            f"{speed:.1f} clips/s, data {waited / max(steps, 1):.3f} s/step, compute "
                            f"{(wall - waited) / max(steps, 1):.3f} s/step | peak mem {mem:.0f} MB | "
                            f"ETA epoch {_hms(eta_epoch)}, run {_hms(eta_run)}",
                            echo=bar is None,
                        )
                        log.scalars(
                            {
                                "train/loss": mean_loss,
                                "train/lr": lr,
                                "train/clips_per_s": speed,
                                "train/data_time_s_per_step": waited / max(steps, 1),
                                "train/compute_time_s_per_step": (wall - waited) / max(steps, 1),
                                "train/peak_mem_mb": mem,
                            },
                            epoch * steps_per_epoch + step + 1,
                        )
                        if bar is not None:
                            bar.set_postfix(loss=f"{mean_loss:.3f}", lr=f"{lr:.3g}", clips_s=f"{speed:.1f}")
                    if STOP.is_set():
                        checkpoint(epoch, step + 1)
                        log(f"stop requested: checkpoint written at epoch {epoch}, step {step + 1}")
                        raise TrainingInterrupted(f"stopped at epoch {epoch} step {step + 1}; re-run to resume")
                    if (
                        tcfg.checkpoint_every_steps
                        and (step + 1) % tcfg.checkpoint_every_steps == 0
                        and step + 1 < steps_per_epoch
                    ):
                        checkpoint(epoch, step + 1)
                if bar is not None:
                    bar.close()
                del it
                train_loss = loss_sum.value() / max(running["loss_n"], 1)  # syncs: the epoch's device work is done
                if diverged is None:
                    check_finite(train_loss)  # before validating or recording the epoch
                epoch_time = time.time() - t0
                train_time = time.perf_counter() - clock.epoch_t0
                seen = running["seen"]
                record = {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "lr": scheduler.get_last_lr()[0],
                    "epoch_time_s": epoch_time,
                    "clips_per_s": seen * U * ctx.world_size / max(epoch_time, 1e-9),
                    "videos_seen": seen * ctx.world_size,
                    "data_time_s": clock.epoch_data,
                    "compute_time_s": max(train_time - clock.epoch_data, 0.0),
                    "peak_mem_mb": _peak_memory_mb(device),
                }
                if (
                    data.val is not None
                    and tcfg.eval_every
                    and ((epoch + 1) % tcfg.eval_every == 0 or epoch + 1 == tcfg.epochs)
                ):
                    m, val_columns = evaluate_dataset(
                        model,
                        data.val,
                        views=1,
                        batch_size=ecfg.batch_size,
                        data=data,
                        device=device,
                        ctx=ctx,
                        seed=seed,
                        workers=workers,
                        amp_dtype=amp_dtype,
                    )
                    record.update({"val_top1": m["top1"], "val_top5": m["top5"], "val_loss": m["loss"]})
                    if m["num_skipped"]:  # on_error=skip: left out of the validation score, listed
                        record["val_skipped_videos"] = m["num_skipped"]
                        unreadable["val"].update(np.flatnonzero(val_columns["skipped"]).tolist())
                        log(f"epoch {epoch + 1}: validation " + _skipped_text(m))
                    if "groups" in m:
                        record.update({f"val_{k}_top1": v["top1"] for k, v in m["groups"].items()})
                skipped = data.train.pop_skipped() if hasattr(data.train, "pop_skipped") else []
                for part in all_gather_objects([s["index"] for s in skipped], ctx):  # every rank's, for the manifest
                    unreadable["train"].update(part)
                if skipped:  # on_error="skip": unreadable videos replaced this epoch, listed by file and line
                    record["skipped_videos"] = len(skipped)
                    log(
                        f"epoch {epoch + 1}: skipped {len(skipped)} unreadable video(s): "
                        + "; ".join(f"{s['path']} ({s['annotation']}:{s['line']}, {s['reason']})" for s in skipped)
                    )
                if ctx.is_main:
                    rd.append_metrics(record)
                epoch_walls.append(time.time() - t0)
                log(
                    f"epoch {epoch + 1}/{tcfg.epochs}: loss {record['train_loss']:.4f}, lr {record['lr']:.4g}, "
                    f"{record['clips_per_s']:.1f} clips/s, data {record['data_time_s']:.1f} s + compute "
                    f"{record['compute_time_s']:.1f} s, peak mem {record['peak_mem_mb']:.0f} MB"
                    + (f", val top-1 {record['val_top1']:.1f}%" if "val_top1" in record else "")
                    + f", ETA run {_hms(float(np.mean(epoch_walls)) * (tcfg.epochs - epoch - 1))}"
                )
                log.scalars({f"epoch/{k}": v for k, v in record.items() if k != "epoch"}, (epoch + 1) * steps_per_epoch)
                checkpoint(epoch + 1, 0)
    except _Diverged:
        stopped = True

    test = test_columns = None
    if data.test is not None and not stopped:
        test, test_columns = evaluate_dataset(
            model,
            data.test,
            views=ecfg.views,
            batch_size=ecfg.batch_size,
            data=data,
            device=device,
            ctx=ctx,
            seed=seed,
            workers=workers,
            amp_dtype=amp_dtype,
            save_scores=ecfg.save_scores,
        )
        test["views"] = ecfg.views
        if test["num_skipped"]:
            log("test " + _skipped_text(test))
        from harness.report.stats import format_accuracy

        log(
            f"test ({ecfg.test_groups} groups x {ecfg.crops} crops, 95% intervals over {test['num_videos']} "
            f"videos): top-1 {format_accuracy(test, 'top1')}, top-5 {format_accuracy(test, 'top5')}, mean class "
            f"{format_accuracy(test, 'mean_class_acc')}"
            + "".join(f", {k} {format_accuracy(v, 'top1', 1)}" for k, v in test.get("groups", {}).items())
        )
    final = None
    if ctx.is_main:
        from harness.measure.profile import profile_record

        test_size = ecfg.test_crop(dcfg)[0]  # the test's cost per view is counted at the test size
        profile = profile_record(mcfg, size=dcfg.size, views=ecfg.views, model=model, test_size=test_size)
        metrics = rd.read_metrics()
        final = {
            "run_id": cfg.get("run_id") or rd.run_id,
            "task": "train",
            "status": "diverged" if diverged is not None else "done",
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "wall_time_s": (wall := time.time() - started),  # this attempt's
            "wall_time_total_s": time_before + wall,  # every attempt's, up to its last checkpoint, and this one's
            "attempts": attempts,
            **describe_environment(device),
            "world_size": ctx.world_size,
            "profile": profile,
            "train": {
                "epochs": tcfg.epochs,
                "global_batch": global_batch,
                "peak_lr": peak_lr,
                "final_train_loss": metrics[-1]["train_loss"] if metrics else None,
                "clips_per_s": float(np.mean([m["clips_per_s"] for m in metrics])) if metrics else None,
                **runtime,
                # peak memory of this (main) process's GPU, GB = 1e9 bytes: the measurement `sweep show` prefers
                # the allocator's peak is reset every epoch (per-epoch peaks in metrics.jsonl): the run's is their max
                "peak_mem_gb": (
                    max(
                        [torch.cuda.max_memory_allocated(device)]
                        + [(m.get("peak_mem_mb") or 0) * 2**20 for m in metrics]
                    )
                    / 1e9
                    if device.type == "cuda"
                    else None
                ),
            },
        }
        if diverged is not None:  # where the loss first turned NaN / inf; stopped: no test
            final["diverged"] = diverged
        final["manifest"] = dataset_manifest(data, dcfg, test, unreadable)
        if stopped:
            final["manifest"].pop("test", None)  # never read
        if test is not None:
            # the per-video rows first: final.json means done, so every file it names is already there
            write_predictions(
                rd.predictions_path,
                test_columns,
                {
                    "run_id": final["run_id"],
                    "list": str(dcfg.test),
                    "list_sha256": final["manifest"]["test"]["sha256"],
                    "num_classes": int(model.fc.out_features),
                    "views": ecfg.views,
                },
            )
            test["predictions"] = PREDICTIONS
            final["test"] = test
            log.scalars(
                {f"test/{k}": v for k, v in test.items() if k in ("top1", "top5", "mean_class_acc", "loss")},
                tcfg.epochs * steps_per_epoch,
            )
        hparams = {k: v for k, v in _flat(rc.identity()).items() if not k.startswith("inputs.")}
        log.hparams(
            {"run_id": final["run_id"], **hparams},
            {
                "final_train_loss": final["train"]["final_train_loss"],
                **{f"test_{k}": test[k] for k in ("top1", "top5") if test is not None},
            },
        )
        rd.write_final(final)
        if diverged is not None:
            log(f"diverged ({diverged_text(diverged)}) after {final['wall_time_s']:.1f} s: {rd.final_path}")
        else:
            log(f"done in {final['wall_time_s']:.1f} s: {rd.final_path}")
    barrier(ctx)
    return final if final is not None else {}


def _skipped_text(metrics: dict) -> str:
    """The log line's account of the videos an evaluation left out as unreadable."""
    return f"left out {metrics['num_skipped']} unreadable video(s), scored {metrics['num_videos']}: " + "; ".join(
        f"{s['path']} (line {s['line']}, {s['reason']})" for s in metrics["skipped_videos"]
    )


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _bar(show: bool, total: int, initial: int, desc: str):
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True)


def _load_resume_state(
    rd: RunDir,
    log,
    ctx: DistributedContext | None = None,
    *,
    run_id: str | None = None,
    identity_sha256: str | None = None,
) -> dict | None:
    """The latest readable checkpoint, falling back to checkpoint.prev.pt if the latest is corrupt.
    Rank 0 alone decides (and moves a corrupt file aside); the other ranks wait for its decision,
    then read the same file. With ``run_id``, a checkpoint of another run (its ``run_id`` or
    ``identity_sha256`` differ: copied from another run folder) is refused with a ``CheckpointError``
    naming the file, its run and the fix, the files left as they are; a checkpoint written before
    checkpoints carried their run is resumed with a warning."""
    ctx = ctx or DistributedContext()
    name = error = state = None
    if ctx.is_main:
        try:
            name, state = _choose_resume_state(rd, log)
            if state is not None and run_id is not None:
                _check_owner(rd, rd.path / name, state, run_id, identity_sha256, log)
        except CheckpointError as e:
            error = e
    name, message = broadcast_object((name, None if error is None else str(error)), ctx)
    if error is not None:
        raise error
    if message is not None:
        raise CheckpointError(message)
    if not ctx.is_main and name is not None:
        state = load_checkpoint(rd.path / name)
    return state


def _check_owner(rd: RunDir, path: Path, state: dict, run_id: str, identity_sha256: str | None, log) -> None:
    """Refuse a checkpoint of another run (see :func:`_load_resume_state`)."""
    theirs = state.get("run_id")
    if theirs is None:
        log(
            f"WARNING: {path} records no run id (written by a harness before checkpoints carried their run): "
            f"resumed as run {run_id}'s"
        )
        return
    their_identity = state.get("identity_sha256")
    if theirs != run_id or (identity_sha256 and their_identity and their_identity != identity_sha256):
        other = f"run {theirs}" + (f" ({their_identity[:23]}...)" if theirs == run_id and their_identity else "")
        raise CheckpointError(
            f"{path} is a checkpoint of {other}, not of this run {run_id}: copied from another run folder? "
            f"move it back to its own run's folder (or away, to restart this run from its own "
            f"{PREV_CHECKPOINT} or from scratch); nothing was changed"
        )


def _choose_resume_state(rd: RunDir, log) -> tuple[str | None, dict | None]:
    if not rd.checkpoint_path.exists():
        prev = rd.path / PREV_CHECKPOINT
        return (prev.name, load_checkpoint(prev)) if prev.exists() else (None, None)
    try:
        return rd.checkpoint_path.name, load_checkpoint(rd.checkpoint_path)
    except CheckpointError as e:
        prev = rd.path / PREV_CHECKPOINT
        if not prev.exists():
            raise
        log(f"WARNING: {e}; resuming from the previous checkpoint {prev}")
        state = load_checkpoint(prev)
        rd.checkpoint_path.replace(rd.path / "checkpoint.corrupt.pt")  # kept for inspection, never deleted
        return prev.name, state


def evaluate_dataset(
    model: nn.Module,
    dataset: Dataset,
    *,
    views: int,
    batch_size: int,
    data: _Data,
    device: torch.device,
    ctx: DistributedContext,
    seed: int,
    workers: int,
    amp_dtype,
    save_scores: bool = False,
) -> tuple[dict, dict]:
    """Evaluate on this rank's shard (no padding) with ``workers`` loader processes and autocast ``amp_dtype``
    (None: full precision), gather all shards, score each video exactly once. Returns (the aggregates, the
    per-video columns of ``harness.results.predictions.build_columns``: one row per listed video, in list
    order, the skipped ones as skipped rows; ``scores`` too with ``save_scores``), the same on every rank."""
    broadcast_buffers(model, ctx)  # every rank scores with rank 0's BatchNorm statistics
    loader = build_loader(
        dataset,
        batch_size,
        shuffle=False,
        seed=seed,
        num_workers=workers,
        rank=ctx.rank,
        world_size=ctx.world_size,
        device=device,
    )
    model = model.to(device)
    batches = (b for b in loader if len(b[2]))  # a batch of videos all left out as unreadable is empty
    scores, labels, index = predict(
        model, batches, views=views, device=device, normalize=data.normalize, amp_dtype=amp_dtype
    )
    skipped = dataset.pop_skipped() if hasattr(dataset, "pop_skipped") else []  # (on_error=skip: left out)
    parts = all_gather_objects((scores, labels, index, skipped), ctx)
    skipped = sorted((s for p in parts for s in p[3]), key=lambda s: s["index"])
    if not any(len(p[2]) for p in parts):
        from harness.data.video import CorruptVideoError

        raise CorruptVideoError(
            skipped[0]["path"] if skipped else str(getattr(dataset, "annotation_file", "")),
            skipped[0]["reason"] if skipped else "undecodable",
            f"none of the {len(dataset)} videos to evaluate could be read",
            f"{skipped[0]['annotation']}:{skipped[0]['line']}" if skipped else "",
        )
    scores = np.concatenate([p[0] for p in parts if len(p[2])])
    labels = np.concatenate([p[1] for p in parts if len(p[2])])
    index = np.concatenate([p[2] for p in parts if len(p[2])])
    order = np.argsort(index, kind="stable")
    scores, labels, index = scores[order], labels[order], index[order]
    covered = set(index.tolist()) | {s["index"] for s in skipped}
    if len(np.unique(index)) != len(index) or len(covered) != len(dataset) or len(covered) != len(index) + len(skipped):
        raise RuntimeError(
            f"evaluation covered {len(covered)} of {len(dataset)} videos ({len(index)} predictions, "
            f"{len(skipped)} unreadable)"
        )
    metrics = classification_metrics(scores, labels, data.factors)  # num_videos: the videos scored
    metrics["loss"] = float(-np.log(np.clip(scores[np.arange(len(labels)), labels], 1e-12, None)).mean())
    metrics["num_skipped"] = len(skipped)
    metrics["skipped_videos"] = [{"path": s["path"], "line": s["line"], "reason": s["reason"]} for s in skipped]
    root = dataset.root  # a VideoDataset: its records in list order
    lines, paths = [r.line for r in dataset.records], [_listed_path(r.path, root) for r in dataset.records]
    columns = build_columns(
        lines=lines,
        paths=paths,
        labels=dataset.labels,
        scored_index=index,
        scores=scores,
        skipped={s["index"]: s["reason"] for s in skipped},
        save_scores=save_scores,
    )
    return metrics, columns


def _listed_path(path: str, root: str | None) -> str:
    """A record's path as its list gives it: relative to the dataset root where the list's path was."""
    if root:
        prefix = os.path.join(root, "")
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path
