"""Training with exact resume, then multi-view testing: ``train_and_evaluate(config, run_dir)``.

A run's life is the :class:`TrainingRun` recipe (in the manner of torchtune's recipes), each step one
method: ``setup`` (runtime, data, model, optimiser, training loader), ``resume`` (the checkpoint and RNG
state to continue from, or a fresh start), ``train`` (per epoch: ``train_epoch``, ``validate``,
``end_epoch`` with its ``save_checkpoint``), ``test`` and ``finish`` (final.json). The pieces live in
files of one reason to change: ``run_folder`` (may this folder take the run?), ``datasets``, ``optim``,
``runtime`` (what ``auto`` resolves to), ``loop`` (the loop's counters and clock), ``sinks`` (log.txt,
TensorBoard, W&B), ``interrupt`` (stop requests), ``checkpoint`` and ``evaluate``.

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
import hashlib
import math
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.config import RunConfig, canonical_json
from harness.data import auto_num_workers, set_epoch
from harness.engine.checkpoint import PREV_CHECKPOINT, gather_rng_states, restore_rng_states
from harness.engine.checkpoint import save_checkpoint as write_checkpoint
from harness.engine.datasets import RunData, build_data, build_train_loader, dataset_manifest, split_manifest
from harness.engine.distributed import (
    all_gather_objects,
    barrier,
    init_distributed,
    seed_rank,
    wrap_model,
)
from harness.engine.evaluate import evaluate_dataset
from harness.engine.interrupt import PAUSE_ENV, PAUSE_LIMIT_S, PAUSED_MARKER, STOP, TrainingInterrupted
from harness.engine.interrupt import pause_after_checkpoint as _pause_after_checkpoint  # tests stop runs through it
from harness.engine.loop import (
    Diverged,
    LossSum,
    NonFinite,
    StepClock,
    diverged_record,
    diverged_text,
    hms,
    peak_memory_mb,
    progress_bar,
    skipped_text,
)
from harness.engine.optim import build_optimizer, ddp_options, lr_factor
from harness.engine.resume import load_resume_state
from harness.engine.run_folder import RUN_FILES, open_run_dir
from harness.engine.runtime import cpu_threads, resolve_amp, resolve_deterministic, select_device, set_determinism
from harness.engine.sinks import LOGGER, RunLog, check_sinks
from harness.errors import ConfigError
from harness.measure.environment import describe_environment
from harness.models import create_model
from harness.results.predictions import write_predictions
from harness.results.rundir import PREDICTIONS, RunDir

__all__ = [  # the engine's names, imported from here by the launcher, the CLI, tests and benchmarks
    "LOGGER",
    "PAUSED_MARKER",
    "PAUSE_ENV",
    "PAUSE_LIMIT_S",
    "PREV_CHECKPOINT",
    "RUN_FILES",
    "STOP",
    "RunData",
    "TrainingInterrupted",
    "TrainingRun",
    "build_data",
    "build_optimizer",
    "build_train_loader",
    "ddp_options",
    "diverged_record",
    "diverged_text",
    "evaluate_dataset",
    "lr_factor",
    "open_run_dir",
    "resolve_amp",
    "resolve_deterministic",
    "set_determinism",
    "split_manifest",
    "train_and_evaluate",
]


@RunLog.scoped
def train_and_evaluate(
    config: dict | RunConfig,
    run_dir: str | Path,
    *,
    echo: bool = True,
    progress: bool | None = None,
    force: bool = False,
) -> dict:
    """Train ``config`` (a run config dict or ``RunConfig``, see harness/config/) in ``run_dir``,
    resuming if possible; then test. Returns the final record (also written to final.json). A
    finished run of the same config is returned as is; a folder of another run, or of files the harness
    did not make, is refused (see :func:`open_run_dir`). The logs it opened are closed however it ends."""
    rd, rc, done = open_run_dir(config, run_dir, force=force)
    if done is not None:
        return done
    rd.create()
    on_disk = rd.read_config() if rd.config_path.exists() else None
    run = TrainingRun(rd, rc, rc.record(**_carried(config, on_disk)), on_disk, echo=echo, progress=progress)
    run.setup()
    run.resume()
    run.train()
    return run.finish(*run.test())


def _carried(config: dict | RunConfig, on_disk: dict | None) -> dict:
    """What a run's config record keeps beside its identity: its ``grid`` and ``resources`` (written by the
    launcher), the given config's over the folder's config.json's."""
    given = config if isinstance(config, dict) else {}
    return {k: v for record in (on_disk or {}, given) for k, v in record.items() if k in ("grid", "resources")}


class TrainingRun:
    """One run's life, each step a method, called in this order by :func:`train_and_evaluate`:
    :meth:`setup`, :meth:`resume`, :meth:`train`, :meth:`test`, :meth:`finish`. What the steps share
    (the model, optimiser, loader, counters, the divergence record) lives on the object. ``cfg`` is the
    fully resolved config record (config.json); ``on_disk`` the one already in the folder, if any."""

    def __init__(
        self, rd: RunDir, rc: RunConfig, cfg: dict, on_disk: dict | None, *, echo: bool, progress: bool | None
    ):
        self.rd, self.rc, self.cfg, self.on_disk = rd, rc, cfg, on_disk
        self.tcfg, self.dcfg, self.ecfg, self.mcfg = rc.train, rc.data, rc.eval, rc.model
        self.seed = cfg["seed"]
        self.echo, self.progress = echo, progress
        self.state: dict | None = None  # the checkpoint resumed from
        self.start_epoch, self.start_step = 0, 0
        self.unreadable: dict[str, set[int]] = {"train": set(), "val": set()}  # distinct list positions unreadable
        self.attempts, self.time_before = 1, 0.0  # attempts so far and their wall time up to their last checkpoint
        self.diverged: dict | None = None  # where the loss first turned non-finite (diverged_record)
        self.stopped = False  # the loss turned non-finite and train.stop_on_nonfinite ended the training

    # ------------------------------------------------------------------------------------- setup
    def setup(self) -> None:
        """Runtime (device, process group, logs, ``auto`` settings), data, model, optimiser, training loader."""
        self._setup_runtime()
        self._setup_data()
        self._setup_model()
        self._setup_optimizer()
        self._setup_train_loader()

    def _setup_runtime(self) -> None:
        tcfg = self.tcfg
        self.ctx = ctx = init_distributed(select_device(tcfg).type)
        self.device = device = ctx.device  # cuda:(local_rank % visible devices), passed explicitly everywhere
        if device.type == "cuda":  # final.json's train.peak_mem_gb is this run's peak, not the process's
            torch.cuda.reset_peak_memory_stats()
        check_sinks(tcfg.log_to)
        self.log = RunLog(self.rd, ctx, self.echo)
        if ctx.is_main and self.on_disk != self.cfg:  # config.json is always the fully resolved config
            self.rd.write_config(self.cfg)
        threads, threads_from = cpu_threads(tcfg.threads, ctx.world_size, self.cfg.get("resources"))
        if threads and (tcfg.threads or device.type == "cpu"):
            torch.set_num_threads(threads)
        self.threads = {"cpu_threads": torch.get_num_threads(), "cpu_threads_from": threads_from}  # final.json
        deterministic = resolve_deterministic(tcfg.deterministic, device)
        cudnn_benchmark = set_determinism(deterministic, device)
        self.amp_dtype, amp_used = resolve_amp(tcfg.amp, device)
        workers = self.dcfg.num_workers if self.dcfg.num_workers is not None else auto_num_workers()
        self.runtime = {  # what the settings "auto" resolved to here (final.json, checkpoints, log)
            "amp_used": amp_used,
            "deterministic_used": deterministic,
            "cudnn_benchmark": cudnn_benchmark,
            "num_workers": workers,
        }
        self.started = time.time()

    def _setup_data(self) -> None:
        mcfg = self.mcfg
        self.data = build_data(self.dcfg, self.ecfg, mcfg.num_snippets, mcfg.num_frames, self.seed)
        if self.data.num_classes > mcfg.num_classes:
            raise ConfigError(
                f"model.num_classes={mcfg.num_classes}, but the data has labels up to "
                f"{self.data.num_classes - 1} ({self.dcfg.annotation}); "
                f"set model.num_classes >= {self.data.num_classes}"
            )

    def _setup_model(self) -> None:
        """The same initial weights on every rank (seeded here), then per-rank streams (dropout)."""
        tcfg, seed = self.tcfg, self.seed
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        self.model = model = create_model(self.mcfg).to(self.device)
        if tcfg.channels_last:
            model.set_channels_last()
        model.set_activation_checkpointing(tcfg.activation_checkpointing)
        seed_rank(seed, self.ctx)  # data order does not use them
        self.ddp_model = wrap_model(model, self.ctx, **ddp_options(tcfg))
        self.train_model = torch.compile(self.ddp_model) if tcfg.compile else self.ddp_model  # evaluation: eager

    def _setup_optimizer(self) -> None:
        tcfg = self.tcfg
        self.global_batch = tcfg.batch_size * self.ctx.world_size * tcfg.grad_accum
        self.peak_lr = tcfg.lr_for(self.global_batch)
        self.optimizer = build_optimizer(self.model, tcfg, self.peak_lr)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype is torch.float16)

    def _setup_train_loader(self) -> None:
        """The training loader, the optimiser steps per epoch and the lr schedule over them."""
        tcfg, train = self.tcfg, self.data.train
        workers = replace(self.dcfg, num_workers=self.runtime["num_workers"])
        self.train_loader = (
            build_train_loader(train, tcfg, workers, self.seed, self.ctx, self.device) if train is not None else None
        )
        batches_per_epoch = len(self.train_loader) if train is not None else 0  # fresh: starts at position 0
        steps_per_epoch = batches_per_epoch // tcfg.grad_accum
        if tcfg.max_steps_per_epoch:
            steps_per_epoch = min(steps_per_epoch, tcfg.max_steps_per_epoch)
        if train is not None and steps_per_epoch < 1:
            raise ConfigError(
                f"{len(train)} training videos give no full step of batch {tcfg.batch_size} x "
                f"accumulation {tcfg.grad_accum} per process: lower train.batch_size or train.grad_accum"
            )
        self.steps_per_epoch = steps_per_epoch
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, steps_per_epoch, tcfg)
        )

    # ------------------------------------------------------------------------------------ resume
    def resume(self) -> None:
        """Continue from the run's latest readable checkpoint (refusing another run's), or start fresh; then
        drop metrics of epochs to be redone and open the sinks from the resume point."""
        self.identity_sha256 = "sha256:" + hashlib.sha256(canonical_json(self.rc.identity()).encode()).hexdigest()
        self.state = load_resume_state(
            self.rd, self.log, self.ctx, run_id=self.rc.run_id, identity_sha256=self.identity_sha256
        )
        if self.state is not None:
            self._restore(self.state)
        else:
            m = self.mcfg
            self.log(
                f"start: {m.name} ({m.flavour} R{m.depth}, aggregator {m.aggregator}), "
                f"{len(self.data.train) if self.data.train else 0} train videos, {self.data.num_classes} classes, "
                f"global batch {self.global_batch}, peak lr {self.peak_lr:.4g}, device {self.device}, "
                f"world {self.ctx.world_size}"
            )
        tcfg, rt = self.tcfg, self.runtime
        self.log(
            f"runtime: amp {rt['amp_used']} (train.amp={tcfg.amp}), deterministic {rt['deterministic_used']} "
            f"(train.deterministic={tcfg.deterministic}), cudnn.benchmark {rt['cudnn_benchmark']}, "
            f"{rt['num_workers']} loader workers, channels_last {tcfg.channels_last}, activation checkpointing "
            f"{','.join(tcfg.activation_checkpointing) or 'none'}, compile {tcfg.compile}, "
            f"{self.threads['cpu_threads']} CPU threads ({self.threads['cpu_threads_from']})"
        )
        if self.ctx.is_main:  # epochs at or after the resume point are redone: drop their old lines
            self.rd.truncate_metrics(keep_epochs_below=self.start_epoch)
        purge_step = self.start_epoch * self.steps_per_epoch + self.start_step if self.state else None
        self.log.open_sinks(tcfg.log_to, self.cfg, purge_step=purge_step)

    def _restore(self, state: dict) -> None:
        """Model, optimiser, schedule, loss scaler, every rank's RNG streams and the run's counters."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler.is_enabled() and state["scaler"]:  # empty when saved without fp16 (CPU, bf16, none)
            self.scaler.load_state_dict(state["scaler"])
        restore_rng_states(state, self.ctx, self.seed)
        self.start_epoch, self.start_step = state["epoch"], state["step"]
        for split, found in (state.get("unreadable") or {}).items():  # (older checkpoints: none recorded)
            self.unreadable.setdefault(split, set()).update(int(i) for i in found)
        self.diverged = state.get("diverged")  # train.stop_on_nonfinite false: found in an earlier attempt
        elapsed = state.get("elapsed") or {"attempts": 1, "wall_time_s": 0.0}  # (older checkpoints: unknown)
        self.attempts, self.time_before = int(elapsed["attempts"]) + 1, float(elapsed["wall_time_s"])
        self.log(f"resumed from checkpoint: epoch {self.start_epoch}, step {self.start_step} (attempt {self.attempts})")
        before = state.get("runtime") or {}
        changed = {k: (before[k], v) for k, v in self.runtime.items() if k in before and before[k] != v}
        if changed:
            self.log(
                "WARNING: this process resolves the run's auto settings otherwise than the one that wrote the "
                "checkpoint: " + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items())
            )

    # ------------------------------------------------------------------------------------- train
    def train(self) -> None:
        """Every epoch from the resume point on; a loss that turns non-finite under
        ``train.stop_on_nonfinite`` ends the training (``self.stopped``: no test)."""
        self.running = {"loss_n": 0, "seen": 0}  # this epoch's counts so far (saved mid-epoch, with the loss sum)
        self.loss_sum, self.nonfinite = LossSum(self.device), NonFinite(self.device)
        self.show = (sys.stderr.isatty() if self.progress is None else self.progress) and self.ctx.is_main
        self.clock, self.epoch_walls = StepClock(), []  # epoch_walls: whole epochs (validation too), this process
        if self.data.train is None:
            return
        try:
            for epoch in range(self.start_epoch, self.tcfg.epochs):
                record = self.train_epoch(epoch)
                self.validate(epoch, record)
                self.end_epoch(epoch, record)
        except Diverged:
            self.stopped = True

    def train_epoch(self, epoch: int) -> dict:
        """The epoch's optimiser steps (from the resume point inside it, if any); returns its metrics record."""
        tcfg = self.tcfg
        first = self.start_step if epoch == self.start_epoch else 0
        videos_per_step = tcfg.batch_size // self.dcfg.clips_per_decode * tcfg.grad_accum  # loader items
        set_epoch(self.train_loader, epoch, start=first * videos_per_step)
        self.ddp_model.train()
        self.epoch_t0 = time.time()
        self.clock.start_epoch(time.perf_counter())
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        sums = self.state.get("epoch_sums") if self.state is not None and epoch == self.start_epoch and first else None
        sums = sums or {"loss_sum": 0.0, "loss_n": 0, "seen": 0}
        self.loss_sum.reset(sums["loss_sum"])
        self.running.update(loss_n=sums["loss_n"], seen=sums["seen"])
        log_every = tcfg.log_every_steps or max(self.steps_per_epoch // 4, 1)  # reading the loss is a host sync
        bar = progress_bar(self.show, self.steps_per_epoch, first, f"epoch {epoch + 1}/{tcfg.epochs}")
        it = iter(self.train_loader)
        for step in range(first, self.steps_per_epoch):
            self._train_step(it, epoch, step)
            if bar is not None:
                bar.update(1)
            if self.ctx.is_main and (step + 1) % log_every == 0:
                self._log_progress(epoch, step, bar)
            self._checkpoint_inside_epoch(epoch, step)
        if bar is not None:
            bar.close()
        del it
        return self._epoch_record(epoch)

    def _train_step(self, batches, epoch: int, step: int) -> None:
        """One optimiser step over ``train.grad_accum`` batches (DDP all-reduces on the last one only)."""
        tcfg, ctx, device = self.tcfg, self.ctx, self.device
        self.optimizer.zero_grad(set_to_none=True)
        for micro in range(tcfg.grad_accum):
            waited = time.perf_counter()
            clips, labels, _ = next(batches)
            self.clock.data(time.perf_counter() - waited)
            x = self.data.normalize(clips.to(device, non_blocking=True))
            y = labels.to(device, non_blocking=True)
            sync = micro == tcfg.grad_accum - 1 or not ctx.enabled
            with self.ddp_model.no_sync() if not sync else contextlib.nullcontext():
                with torch.autocast(device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                    loss = F.cross_entropy(self.train_model(x), y)
                self.scaler.scale(loss / tcfg.grad_accum).backward()
            self.loss_sum.add(loss, len(y))
            self.nonfinite.note(loss, epoch * self.steps_per_epoch + step + 1)
            self.running["loss_n"] += len(y)
            self.running["seen"] += len(y)
        if tcfg.clip_grad_norm:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), tcfg.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.clock.step()

    def _log_progress(self, epoch: int, step: int, bar) -> None:
        """A progress line (loss, lr, speed, where the time goes, memory, ETA) and its scalars (rank 0)."""
        steps_per_epoch = self.steps_per_epoch
        mean_loss = self.loss_sum.value() / max(self.running["loss_n"], 1)  # the sync the timing rests on
        if self.ctx.world_size == 1 and self.diverged is None:  # (several ranks: at checkpoints, epoch ends)
            self.check_finite(mean_loss, collective=False)
        lr = self.scheduler.get_last_lr()[0]
        wall, waited, steps = self.clock.interval(time.perf_counter())
        per_step = (time.perf_counter() - self.clock.epoch_t0) / max(self.clock.epoch_steps, 1)
        eta_epoch = per_step * (steps_per_epoch - step - 1)
        later = self.tcfg.epochs - epoch - 1
        eta_run = eta_epoch + later * (np.mean(self.epoch_walls) if self.epoch_walls else per_step * steps_per_epoch)
        clips_per_step = self.tcfg.batch_size * self.tcfg.grad_accum * self.mcfg.num_snippets * self.ctx.world_size
        speed = clips_per_step * steps / max(wall, 1e-9)
        mem = peak_memory_mb(self.device)
        self.log(
            f"epoch {epoch + 1} step {step + 1}/{steps_per_epoch} loss {mean_loss:.4f} lr {lr:.4g} | "
            f"{speed:.1f} clips/s, data {waited / max(steps, 1):.3f} s/step, compute "
            f"{(wall - waited) / max(steps, 1):.3f} s/step | peak mem {mem:.0f} MB | "
            f"ETA epoch {hms(eta_epoch)}, run {hms(eta_run)}",
            echo=bar is None,
        )
        self.log.scalars(
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

    def _checkpoint_inside_epoch(self, epoch: int, step: int) -> None:
        """After step ``step``: a stop request checkpoints and ends the process's work (resumable);
        ``train.checkpoint_every_steps`` checkpoints inside the epoch (its end checkpoints anyway)."""
        if STOP.is_set():
            self.save_checkpoint(epoch, step + 1)
            self.log(f"stop requested: checkpoint written at epoch {epoch}, step {step + 1}")
            raise TrainingInterrupted(f"stopped at epoch {epoch} step {step + 1}; re-run to resume")
        every = self.tcfg.checkpoint_every_steps
        if every and (step + 1) % every == 0 and step + 1 < self.steps_per_epoch:
            self.save_checkpoint(epoch, step + 1)

    def _epoch_record(self, epoch: int) -> dict:
        """The epoch's line of metrics.jsonl (before validation); checks the loss first."""
        train_loss = self.loss_sum.value() / max(self.running["loss_n"], 1)  # syncs: the epoch's device work is done
        if self.diverged is None:
            self.check_finite(train_loss)  # before validating or recording the epoch
        epoch_time = time.time() - self.epoch_t0
        train_time = time.perf_counter() - self.clock.epoch_t0
        seen, world = self.running["seen"], self.ctx.world_size
        return {
            "epoch": epoch,
            "train_loss": train_loss,
            "lr": self.scheduler.get_last_lr()[0],
            "epoch_time_s": epoch_time,
            "clips_per_s": seen * self.mcfg.num_snippets * world / max(epoch_time, 1e-9),
            "videos_seen": seen * world,
            "data_time_s": self.clock.epoch_data,
            "compute_time_s": max(train_time - self.clock.epoch_data, 0.0),
            "peak_mem_mb": peak_memory_mb(self.device),
        }

    def _eval_options(self) -> dict:
        """What validation and the test share: the loader, device, ranks, precision."""
        return {
            "batch_size": self.ecfg.batch_size,
            "data": self.data,
            "device": self.device,
            "ctx": self.ctx,
            "seed": self.seed,
            "workers": self.runtime["num_workers"],
            "amp_dtype": self.amp_dtype,
        }

    def validate(self, epoch: int, record: dict) -> None:
        """One view per video of ``data.val`` every ``train.eval_every`` epochs and at the last; into ``record``."""
        tcfg = self.tcfg
        if self.data.val is None or not tcfg.eval_every:
            return
        if (epoch + 1) % tcfg.eval_every and epoch + 1 != tcfg.epochs:
            return
        m, columns = evaluate_dataset(self.model, self.data.val, views=1, **self._eval_options())
        record.update({"val_top1": m["top1"], "val_top5": m["top5"], "val_loss": m["loss"]})
        if m["num_skipped"]:  # on_error=skip: left out of the validation score, listed
            record["val_skipped_videos"] = m["num_skipped"]
            self.unreadable["val"].update(np.flatnonzero(columns["skipped"]).tolist())
            self.log(f"epoch {epoch + 1}: validation " + skipped_text(m))
        if "groups" in m:
            record.update({f"val_{k}_top1": v["top1"] for k, v in m["groups"].items()})

    def end_epoch(self, epoch: int, record: dict) -> None:
        """Record the epoch (metrics.jsonl, its log line, the sinks) and checkpoint its end."""
        self._note_skipped_training_videos(epoch, record)
        if self.ctx.is_main:
            self.rd.append_metrics(record)
        self.epoch_walls.append(time.time() - self.epoch_t0)
        epochs = self.tcfg.epochs
        self.log(
            f"epoch {epoch + 1}/{epochs}: loss {record['train_loss']:.4f}, lr {record['lr']:.4g}, "
            f"{record['clips_per_s']:.1f} clips/s, data {record['data_time_s']:.1f} s + compute "
            f"{record['compute_time_s']:.1f} s, peak mem {record['peak_mem_mb']:.0f} MB"
            + (f", val top-1 {record['val_top1']:.1f}%" if "val_top1" in record else "")
            + f", ETA run {hms(float(np.mean(self.epoch_walls)) * (epochs - epoch - 1))}"
        )
        self.log.scalars(
            {f"epoch/{k}": v for k, v in record.items() if k != "epoch"}, (epoch + 1) * self.steps_per_epoch
        )
        self.save_checkpoint(epoch + 1, 0)

    def _note_skipped_training_videos(self, epoch: int, record: dict) -> None:
        """on_error=skip: the unreadable videos replaced this epoch (every rank's), for the manifest and the log."""
        train = self.data.train
        skipped = train.pop_skipped() if hasattr(train, "pop_skipped") else []
        for part in all_gather_objects([s["index"] for s in skipped], self.ctx):
            self.unreadable["train"].update(part)
        if skipped:
            record["skipped_videos"] = len(skipped)
            self.log(
                f"epoch {epoch + 1}: skipped {len(skipped)} unreadable video(s): "
                + "; ".join(f"{s['path']} ({s['annotation']}:{s['line']}, {s['reason']})" for s in skipped)
            )

    def check_finite(self, total: float | None, collective: bool = True) -> None:
        """``total``: this rank's loss sum, just read (None: read it). Once it is not finite (on any rank,
        gathered where ``collective``), note where the loss first turned so, and stop the run
        (``train.stop_on_nonfinite``) on every rank at once."""
        total = self.loss_sum.value() if total is None else total
        bad = self.nonfinite.read() if not math.isfinite(total) else None
        found = all_gather_objects(bad, self.ctx) if collective else [bad]
        found = [f for f in found if f is not None and f[0] > 0]
        if not found:
            return
        stop = self.tcfg.stop_on_nonfinite
        if self.diverged is None:
            self.diverged = diverged_record(*min(found), self.steps_per_epoch, stop)
            self.log(
                f"DIVERGED: {diverged_text(self.diverged)}; "
                + (
                    "train.stop_on_nonfinite=true: the run ends as diverged (no test; lower train.base_lr, "
                    "or set train.clip_grad_norm)"
                    if stop
                    else "train.stop_on_nonfinite=false: training goes on, the record will say diverged"
                )
            )
        if stop:
            raise Diverged(diverged_text(self.diverged))

    # --------------------------------------------------------------------------- save_checkpoint
    def save_checkpoint(self, epoch: int, step: int) -> None:
        """Everything a resume needs, at (epoch, step inside it); the previous checkpoint kept. Mid-epoch,
        never the weights of a diverged run (an epoch's end has checked already)."""
        if step:
            self.check_finite(None)
        rngs = gather_rng_states(self.ctx)  # every rank's generators, so that each resumes its own
        if self.ctx.is_main:
            rd = self.rd
            if rd.checkpoint_path.exists():
                rd.checkpoint_path.replace(rd.path / PREV_CHECKPOINT)
            write_checkpoint(rd.checkpoint_path, self._checkpoint_state(epoch, step, rngs))
            _pause_after_checkpoint(rd, epoch, step, self.log)
        barrier(self.ctx)

    def _checkpoint_state(self, epoch: int, step: int, rngs: list[dict]) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rngs[0],
            "rng_ranks": rngs,
            "epoch": epoch,
            "step": step,
            "epoch_sums": {"loss_sum": self.loss_sum.value(), **self.running} if step else None,
            "runtime": self.runtime,
            "elapsed": {"attempts": self.attempts, "wall_time_s": self.time_before + time.time() - self.started},
            "unreadable": {k: sorted(v) for k, v in self.unreadable.items()},  # distinct, for the manifest
            "format": 1,
            "diverged": self.diverged,
            "run_id": self.rc.run_id,  # whose checkpoint it is: a resume refuses another run's
            "identity_sha256": self.identity_sha256,
        }

    # -------------------------------------------------------------------------------------- test
    def test(self) -> tuple[dict | None, dict | None]:
        """Multi-view test of ``data.test`` (none after a stopped divergence): (aggregates, per-video columns)."""
        ecfg = self.ecfg
        if self.data.test is None or self.stopped:
            return None, None
        test, columns = evaluate_dataset(
            self.model, self.data.test, views=ecfg.views, save_scores=ecfg.save_scores, **self._eval_options()
        )
        test["views"] = ecfg.views
        if test["num_skipped"]:
            self.log("test " + skipped_text(test))
        from harness.report.stats import format_accuracy

        self.log(
            f"test ({ecfg.test_groups} groups x {ecfg.crops} crops, 95% intervals over {test['num_videos']} "
            f"videos): top-1 {format_accuracy(test, 'top1')}, top-5 {format_accuracy(test, 'top5')}, mean class "
            f"{format_accuracy(test, 'mean_class_acc')}"
            + "".join(f", {k} {format_accuracy(v, 'top1', 1)}" for k, v in test.get("groups", {}).items())
        )
        return test, columns

    # ------------------------------------------------------------------------------------ finish
    def finish(self, test: dict | None, columns: dict | None) -> dict:
        """final.json (rank 0), after the per-video predictions it names; the final record ({} on other ranks)."""
        final = None
        if self.ctx.is_main:
            final = self._final_record(test)
            if test is not None:  # the per-video rows first: final.json means done, so every file it names is there
                self._write_predictions(final, columns)
                test["predictions"] = PREDICTIONS
                final["test"] = test
                self.log.scalars(
                    {f"test/{k}": v for k, v in test.items() if k in ("top1", "top5", "mean_class_acc", "loss")},
                    self.tcfg.epochs * self.steps_per_epoch,
                )
            hparams = {k: v for k, v in _flat(self.rc.identity()).items() if not k.startswith("inputs.")}
            self.log.hparams(
                {"run_id": final["run_id"], **hparams},
                {
                    "final_train_loss": final["train"]["final_train_loss"],
                    **{f"test_{k}": test[k] for k in ("top1", "top5") if test is not None},
                },
            )
            self.rd.write_final(final)
            if self.diverged is not None:
                self.log(
                    f"diverged ({diverged_text(self.diverged)}) after {final['wall_time_s']:.1f} s: "
                    f"{self.rd.final_path}"
                )
            else:
                self.log(f"done in {final['wall_time_s']:.1f} s: {self.rd.final_path}")
        barrier(self.ctx)
        return final if final is not None else {}

    def _final_record(self, test: dict | None) -> dict:
        """final.json's fields but the test's: status, timing, environment, profile, training, manifest."""
        from harness.measure.profile import profile_record

        test_size = self.ecfg.test_crop(self.dcfg)[0]  # the test's cost per view is counted at the test size
        profile = profile_record(
            self.mcfg, size=self.dcfg.size, views=self.ecfg.views, model=self.model, test_size=test_size
        )
        metrics = self.rd.read_metrics()
        final = {
            "run_id": self.cfg.get("run_id") or self.rd.run_id,
            "task": "train",
            "status": "diverged" if self.diverged is not None else "done",
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "wall_time_s": (wall := time.time() - self.started),  # this attempt's
            "wall_time_total_s": self.time_before + wall,  # every attempt's, up to its last checkpoint, and this one's
            "attempts": self.attempts,
            **describe_environment(self.device),
            "world_size": self.ctx.world_size,
            "profile": profile,
            "train": self._train_summary(metrics),
        }
        if self.diverged is not None:  # where the loss first turned NaN / inf; stopped: no test
            final["diverged"] = self.diverged
        final["manifest"] = dataset_manifest(self.data, self.dcfg, test, self.unreadable)
        if self.stopped:
            final["manifest"].pop("test", None)  # never read
        return final

    def _train_summary(self, metrics: list[dict]) -> dict:
        """final.json's ``train``: the schedule, the last loss, mean speed, what ``auto`` resolved to, peak memory."""
        device = self.device
        return {
            "epochs": self.tcfg.epochs,
            "global_batch": self.global_batch,
            "peak_lr": self.peak_lr,
            "final_train_loss": metrics[-1]["train_loss"] if metrics else None,
            "clips_per_s": float(np.mean([m["clips_per_s"] for m in metrics])) if metrics else None,
            **self.runtime,
            **self.threads,
            # peak memory of this (main) process's GPU, GB = 1e9 bytes: the measurement `sweep show` prefers
            # the allocator's peak is reset every epoch (per-epoch peaks in metrics.jsonl): the run's is their max
            "peak_mem_gb": (
                max([torch.cuda.max_memory_allocated(device)] + [(m.get("peak_mem_mb") or 0) * 2**20 for m in metrics])
                / 1e9
                if device.type == "cuda"
                else None
            ),
        }

    def _write_predictions(self, final: dict, columns: dict) -> None:
        write_predictions(
            self.rd.predictions_path,
            columns,
            {
                "run_id": final["run_id"],
                "list": str(self.dcfg.test),
                "list_sha256": final["manifest"]["test"]["sha256"],
                "num_classes": int(self.model.fc.out_features),
                "views": self.ecfg.views,
            },
        )


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
