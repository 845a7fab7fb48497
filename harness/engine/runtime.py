"""What a run's ``auto`` settings resolve to where it runs: the device, autocast, determinism, CPU threads."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import torch

from harness.config import TrainConfig
from harness.errors import ConfigError


def select_device(cfg: TrainConfig) -> torch.device:
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


def ranks_on_this_node(world_size: int, env: Mapping[str, str] | None = None) -> int:
    """The processes of this run on this node, from the launcher's environment: torchrun's
    ``LOCAL_WORLD_SIZE``, SLURM's ``SLURM_NTASKS_PER_NODE`` (or the first count of ``SLURM_TASKS_PER_NODE``,
    e.g. ``2(x3)``), submitit's local ``SUBMITIT_LOCAL_NTASKS``; else all ``world_size`` (one node)."""
    env = os.environ if env is None else env
    for name in ("LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE", "SLURM_TASKS_PER_NODE", "SUBMITIT_LOCAL_NTASKS"):
        value = re.match(r"\d+", env.get(name, ""))
        if value and int(value.group()) >= 1:
            return int(value.group())
    return world_size


def cpu_threads(
    threads: int | None, world_size: int, resources: Mapping | None, env: Mapping[str, str] | None = None
) -> tuple[int | None, str]:
    """(intra-op threads of one CPU process, where the number comes from) — None: torch's default is kept.
    ``train.threads`` when set; one process: torch's default; several ranks (CPU DDP) share the node's
    cores instead of each taking torch's default (all of them): ``OMP_NUM_THREADS`` when the launcher set it
    (the local executor sets it to ``resources.cpus_per_task``), else ``resources.cpus_per_task`` (CPUs per
    task, i.e. per rank, as SLURM's ``--cpus-per-task``), capped by the CPUs this process may run on, else
    those CPUs divided among the ranks on this node."""
    env = os.environ if env is None else env
    if threads:
        return threads, "train.threads"
    if world_size <= 1:
        return None, "torch's default"
    omp = env.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) >= 1:
        return int(omp), "OMP_NUM_THREADS"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    per_task = (resources or {}).get("cpus_per_task")
    if isinstance(per_task, int) and per_task >= 1:
        return max(1, min(per_task, cpus)), "resources.cpus_per_task"
    local = ranks_on_this_node(world_size, env)
    return max(1, cpus // local), f"{cpus} CPUs / {local} ranks on this node"
