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
import json
import math
import os
import sys
import threading
import time
from dataclasses import dataclass
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
    describe_diff,
    identity_diff,
)
from harness.data import build_loader, set_epoch
from harness.engine.checkpoint import (
    CheckpointError,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from harness.engine.distributed import DistributedContext, all_gather_objects, barrier, init_distributed
from harness.engine.evaluate import classification_metrics, predict
from harness.errors import ConfigError, RunDirError, UsageError
from harness.measure.environment import describe_environment
from harness.models import create_model
from harness.results.rundir import RunDir

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
            **extra,
        )

    train, val, test = make(data.train, "train"), make(data.val, "val"), make(data.test, "test")
    labels = [lab for ds in (train, val, test) if ds is not None for lab in ds.labels]
    if not labels:
        raise ConfigError("no data: set data.train and/or data.test")
    num_classes, factors = max(labels) + 1, None
    ref = next(p for p in (data.train, data.val, data.test) if p)
    classes_file = Path(ref).parent / "classes.json"
    if classes_file.exists():
        try:
            classes = json.loads(classes_file.read_text(encoding="utf-8"))
            entries = classes.get("classes", classes) if isinstance(classes, dict) else classes
            num_classes = max(num_classes, len(entries))
            if entries and isinstance(entries[0], dict) and entries[0].get("factors"):
                names = list(entries[0]["factors"])
                factors = {n: [str(e["factors"][n]) for e in entries] for n in names}
        except (ValueError, KeyError, TypeError, AttributeError):  # JSONDecodeError, UnicodeDecodeError too
            raise ConfigError(
                f'{classes_file}: unreadable class list (JSON list or {{"classes": [...]}}, '
                "entries with the same 'factors' keys)"
            ) from None

    def norm(x: torch.Tensor) -> torch.Tensor:  # (N, V*U, C, T, H, W) uint8 -> normalised float
        return normalize(x)

    return _Data(train, val, test, num_classes, factors, norm)


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


# ---------------------------------------------------------------------------------------------
class _Log:
    def __init__(self, rd: RunDir, ctx: DistributedContext, echo: bool):
        self.rd, self.ctx, self.echo = rd, ctx, echo

    def __call__(self, msg: str) -> None:
        if not self.ctx.is_main:
            return
        line = f"{datetime.now().strftime('%H:%M:%S')} {msg}"
        self.rd.log(line)
        if self.echo:
            print(line, flush=True)


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


def open_run_dir(config: dict | RunConfig, run_dir: str | Path) -> tuple[RunDir, RunConfig, dict | None]:
    """Check that ``run_dir`` can take ``config`` and return (run dir, resolved config, final record
    or None). A folder holding another run (different resolved config, or the same config over
    changed input files) is refused with ``RunDirError`` naming the keys that differ; a finished run
    of the same config returns its final record (nothing is redone)."""
    rc = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
    given = config if isinstance(config, dict) else {}
    rd = RunDir(run_dir)
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


def train_and_evaluate(
    config: dict | RunConfig, run_dir: str | Path, *, echo: bool = True, progress: bool | None = None
) -> dict:
    """Train ``config`` (a run config dict or ``RunConfig``, see harness/config.py) in ``run_dir``,
    resuming if possible; then test. Returns the final record (also written to final.json). A
    finished run of the same config is returned as is; a folder of another run is refused."""
    rd, rc, done = open_run_dir(config, run_dir)
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
    if device.type == "cuda":  # final.json's train.peak_mem_gb is this run's peak, not the process's
        torch.cuda.reset_peak_memory_stats()
    log = _Log(rd, ctx, echo)
    if ctx.is_main and on_disk != cfg:  # config.json is always the fully resolved config
        rd.write_config(cfg)
    if tcfg.threads:
        torch.set_num_threads(tcfg.threads)
    if tcfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
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
    model = create_model(mcfg).to(device)
    ddp_model = (
        nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        if ctx.enabled
        else model
    )
    global_batch = tcfg.batch_size * ctx.world_size * tcfg.grad_accum
    peak_lr = tcfg.lr_for(global_batch)
    optimizer = build_optimizer(model, tcfg, peak_lr)
    amp_dtype = (
        {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[tcfg.amp] if device.type == "cuda" else None
    )
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype is torch.float16)

    train_loader = build_train_loader(data.train, tcfg, dcfg, seed, ctx, device) if data.train is not None else None
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
    state = _load_resume_state(rd, log)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        start_epoch, start_step = state["epoch"], state["step"]
        log(f"resumed from checkpoint: epoch {start_epoch}, step {start_step}")
    else:
        log(
            f"start: {mcfg.name} ({mcfg.flavour} R{mcfg.depth}, aggregator {mcfg.aggregator}), "
            f"{len(data.train) if data.train else 0} train videos, {data.num_classes} classes, "
            f"global batch {global_batch}, peak lr {peak_lr:.4g}, device {device}, world {ctx.world_size}"
        )

    if ctx.is_main:  # epochs at or after the resume point are redone: drop their old lines
        rd.truncate_metrics(keep_epochs_below=start_epoch)

    running = {"loss_sum": 0.0, "loss_n": 0, "seen": 0}  # this epoch's sums so far (saved mid-epoch)

    def checkpoint(epoch: int, step: int) -> None:
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
                    "rng": rng_state(),
                    "epoch": epoch,
                    "step": step,
                    "epoch_sums": dict(running) if step else None,
                    "format": 1,
                },
            )
            _pause_after_checkpoint(rd, epoch, step, log)
        barrier(ctx)

    show = sys.stderr.isatty() if progress is None else progress
    show = show and ctx.is_main
    U = mcfg.num_snippets
    if data.train is not None:
        for epoch in range(start_epoch, tcfg.epochs):
            first = start_step if epoch == start_epoch else 0
            set_epoch(train_loader, epoch, start=first * tcfg.batch_size * tcfg.grad_accum)
            ddp_model.train()
            t0 = time.time()
            sums = state.get("epoch_sums") if state is not None and epoch == start_epoch and first else None
            running.update(sums or {"loss_sum": 0.0, "loss_n": 0, "seen": 0})
            bar = _bar(show, steps_per_epoch, first, f"epoch {epoch + 1}/{tcfg.epochs}")
            it = iter(train_loader)
            for step in range(first, steps_per_epoch):
                optimizer.zero_grad(set_to_none=True)
                for micro in range(tcfg.grad_accum):
                    clips, labels, _ = next(it)
                    x = data.normalize(clips.to(device, non_blocking=True))
                    y = labels.to(device)
                    sync = micro == tcfg.grad_accum - 1 or not ctx.enabled
                    with ddp_model.no_sync() if not sync else contextlib.nullcontext():
                        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                            loss = F.cross_entropy(ddp_model(x), y)
                        scaler.scale(loss / tcfg.grad_accum).backward()
                    running["loss_sum"] += loss.item() * len(y)
                    running["loss_n"] += len(y)
                    running["seen"] += len(y)
                if tcfg.clip_grad_norm:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), tcfg.clip_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                mean_loss = running["loss_sum"] / max(running["loss_n"], 1)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{mean_loss:.3f}", lr=f"{scheduler.get_last_lr()[0]:.3g}")
                elif ctx.is_main and (step + 1) % max(steps_per_epoch // 4, 1) == 0:
                    log(f"epoch {epoch + 1} step {step + 1}/{steps_per_epoch} loss {mean_loss:.4f}")
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
            epoch_time = time.time() - t0
            seen = running["seen"]
            record = {
                "epoch": epoch,
                "train_loss": running["loss_sum"] / max(running["loss_n"], 1),
                "lr": scheduler.get_last_lr()[0],
                "epoch_time_s": epoch_time,
                "clips_per_s": seen * U * ctx.world_size / max(epoch_time, 1e-9),
                "videos_seen": seen * ctx.world_size,
            }
            if (
                data.val is not None
                and tcfg.eval_every
                and ((epoch + 1) % tcfg.eval_every == 0 or epoch + 1 == tcfg.epochs)
            ):
                m = evaluate_dataset(
                    model,
                    data.val,
                    views=1,
                    batch_size=ecfg.batch_size,
                    data=data,
                    device=device,
                    ctx=ctx,
                    seed=seed,
                    workers=min(dcfg.num_workers, 1),  # at most 1 here, as before; `eval` uses all
                    amp_dtype=amp_dtype,
                )
                record.update({"val_top1": m["top1"], "val_top5": m["top5"], "val_loss": m["loss"]})
                if "groups" in m:
                    record.update({f"val_{k}_top1": v["top1"] for k, v in m["groups"].items()})
            skipped = data.train.pop_skipped() if hasattr(data.train, "pop_skipped") else []
            if skipped:  # on_error="skip": unreadable videos replaced this epoch, listed by file and line
                record["skipped_videos"] = len(skipped)
                log(
                    f"epoch {epoch + 1}: skipped {len(skipped)} unreadable video(s): "
                    + "; ".join(f"{s['path']} ({s['annotation']}:{s['line']}, {s['reason']})" for s in skipped)
                )
            if ctx.is_main:
                rd.append_metrics(record)
            log(
                f"epoch {epoch + 1}: loss {record['train_loss']:.4f}, lr {record['lr']:.4g}, "
                f"{record['clips_per_s']:.1f} clips/s"
                + (f", val top-1 {record['val_top1']:.1f}%" if "val_top1" in record else "")
            )
            checkpoint(epoch + 1, 0)

    test = None
    if data.test is not None:
        test = evaluate_dataset(
            model,
            data.test,
            views=ecfg.views,
            batch_size=ecfg.batch_size,
            data=data,
            device=device,
            ctx=ctx,
            seed=seed,
            workers=min(dcfg.num_workers, 1),  # at most 1 here, as before; `eval` uses all
            amp_dtype=amp_dtype,
        )
        test["views"] = ecfg.views
        log(
            f"test ({ecfg.test_groups} groups x {ecfg.crops} crops): top-1 {test['top1']:.2f}%, "
            f"top-5 {test['top5']:.2f}%, mean class {test['mean_class_acc']:.2f}%"
            + "".join(f", {k} {v['top1']:.1f}%" for k, v in test.get("groups", {}).items())
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
            "status": "done",
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "wall_time_s": time.time() - started,
            **describe_environment(device),
            "world_size": ctx.world_size,
            "profile": profile,
            "train": {
                "epochs": tcfg.epochs,
                "global_batch": global_batch,
                "peak_lr": peak_lr,
                "final_train_loss": metrics[-1]["train_loss"] if metrics else None,
                "clips_per_s": float(np.mean([m["clips_per_s"] for m in metrics])) if metrics else None,
                # peak memory of this (main) process's GPU, GB = 1e9 bytes: the measurement `sweep show` prefers
                "peak_mem_gb": torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None,
            },
        }
        if test is not None:
            final["test"] = test
        rd.write_final(final)
        log(f"done in {final['wall_time_s']:.1f} s: {rd.final_path}")
    barrier(ctx)
    return final if final is not None else {}


def _bar(show: bool, total: int, initial: int, desc: str):
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True)


def _load_resume_state(rd: RunDir, log) -> dict | None:
    """The latest readable checkpoint, falling back to checkpoint.prev.pt if the latest is corrupt."""
    if not rd.checkpoint_path.exists():
        prev = rd.path / PREV_CHECKPOINT
        return load_checkpoint(prev) if prev.exists() else None
    try:
        return load_checkpoint(rd.checkpoint_path)
    except CheckpointError as e:
        prev = rd.path / PREV_CHECKPOINT
        if not prev.exists():
            raise
        log(f"WARNING: {e}; resuming from the previous checkpoint {prev}")
        state = load_checkpoint(prev)
        rd.checkpoint_path.replace(rd.path / "checkpoint.corrupt.pt")  # kept for inspection, never deleted
        return state


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
) -> dict:
    """Evaluate on this rank's shard (no padding) with ``workers`` loader processes and autocast ``amp_dtype``
    (None: full precision), gather all shards, score each video exactly once."""
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
    scores, labels, index = predict(
        model, loader, views=views, device=device, normalize=data.normalize, amp_dtype=amp_dtype
    )
    parts = all_gather_objects((scores, labels, index), ctx)
    scores = np.concatenate([p[0] for p in parts if len(p[2])])
    labels = np.concatenate([p[1] for p in parts if len(p[2])])
    index = np.concatenate([p[2] for p in parts if len(p[2])])
    order = np.argsort(index, kind="stable")
    scores, labels, index = scores[order], labels[order], index[order]
    if len(np.unique(index)) != len(index) or len(index) != len(dataset):
        raise RuntimeError(
            f"evaluation covered {len(np.unique(index))} of {len(dataset)} videos ({len(index)} predictions)"
        )
    metrics = classification_metrics(scores, labels, data.factors)
    metrics["loss"] = float(-np.log(np.clip(scores[np.arange(len(labels)), labels], 1e-12, None)).mean())
    return metrics
