"""Process-group set-up from torchrun's variables or from submitit's JobEnvironment.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT. Under a submitit SLURM job
with tasks_per_node = GPUs, ``submitit.JobEnvironment()`` gives global_rank / num_tasks / local_rank and
the first node's hostname; the port is derived from the job id. Backend: nccl on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def _from_submitit() -> tuple[int, int, int, str, int] | None:
    if "SUBMITIT_EXECUTOR" not in os.environ and "SLURM_JOB_ID" not in os.environ:
        return None
    try:
        import submitit

        env = submitit.JobEnvironment()
    except Exception:  # noqa: BLE001 - not inside a submitit job
        return None
    if env.num_tasks <= 1:
        return None
    port = 20000 + int(str(env.job_id).split("_")[0]) % 20000
    return env.global_rank, env.num_tasks, env.local_rank, env.hostnames[0], port


def init_distributed(device_type: str) -> DistributedContext:
    """Initialise the default process group if the environment describes more than one process."""
    if dist.is_available() and dist.is_initialized():
        return DistributedContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", 0))
    else:
        found = _from_submitit()
        if found is None:
            return DistributedContext()
        rank, world, local, addr, port = found
        os.environ.setdefault("MASTER_ADDR", addr)
        os.environ.setdefault("MASTER_PORT", str(port))
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistributedContext(rank, world, local)


def all_gather_objects(obj, ctx: DistributedContext) -> list:
    if not ctx.enabled:
        return [obj]
    out = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: DistributedContext) -> None:
    if ctx.enabled:
        dist.barrier()
