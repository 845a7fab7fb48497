"""Optimisation of a run: the learning-rate schedule, SGD with its weight-decay groups, DDP options."""

from __future__ import annotations

import math

import torch
from torch import nn

from harness.config import TrainConfig


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


def ddp_options(cfg: TrainConfig) -> dict:
    """DistributedDataParallel options of a run: gradients live in the all-reduce buckets (no copy);
    a static graph (the model uses every parameter in every step) unless gradient accumulation
    (``no_sync``) or ``torch.compile`` is involved, which static_graph does not support reliably."""
    return {"gradient_as_bucket_view": True, "static_graph": cfg.grad_accum == 1 and not cfg.compile}
