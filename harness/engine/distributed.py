"""Process groups: who is who (rank, world size, local rank, rendezvous address and port, device),
read from the environment, and the few collectives the harness uses.

Sources, first match wins (:func:`rendezvous_from_env`, a pure function of the environment):

1. torchrun (or any launcher setting its variables): ``WORLD_SIZE`` > 1 with ``RANK``, ``LOCAL_RANK``,
   ``MASTER_ADDR``, ``MASTER_PORT``.
2. a submitit SLURM task (``SUBMITIT_EXECUTOR=slurm``): rank ``SLURM_PROCID``, world ``SLURM_NTASKS``,
   local rank ``SLURM_LOCALID``; address: the first host of ``SLURM_STEP_NODELIST`` (else
   ``SLURM_JOB_NODELIST``); port derived from ``SLURM_JOB_ID``, which SLURM gives every task of a job
   array its own (``SLURM_ARRAY_JOB_ID`` is shared by all of them and is never used here), so two
   array tasks on one node never meet on one port.
3. a submitit local job (``SUBMITIT_EXECUTOR=local``, ``resources.tasks`` > 1): rank
   ``SUBMITIT_LOCAL_GLOBALID``, world ``SUBMITIT_LOCAL_NTASKS``, local rank ``SUBMITIT_LOCAL_LOCALID``;
   address 127.0.0.1; port derived from ``SUBMITIT_LOCAL_JOB_ID`` (the worker's controller pid).

``MASTER_ADDR`` / ``MASTER_PORT`` already in the environment win over derived ones. A derived port
lies in 20000-31999 (below Linux's ephemeral range) and rank 0 checks that it is free before it
binds it (:class:`RendezvousError` naming the fix otherwise). The device of a rank is
``cuda:(local_rank % torch.cuda.device_count())``: right both where each task sees all of its node's
GPUs and where each task sees only its own (``--gpus-per-task``, ``--gpu-bind``); it is passed
explicitly everywhere (``set_device``, DDP ``device_ids``, tensors). Backend: nccl on CUDA, gloo on CPU.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import random
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist

from harness.errors import ConfigError, HarnessError

PORT_BASE, PORT_SPAN = 20000, 12000
"""Derived rendezvous ports: PORT_BASE + job id % PORT_SPAN, below the ephemeral range (32768-60999)."""


class RendezvousError(HarnessError, RuntimeError):
    """The process group cannot be set up here (its port is taken); the message names the fix."""


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


@dataclass(frozen=True)
class Rendezvous:
    """Where a process stands in its group and where the group meets."""

    rank: int
    world_size: int
    local_rank: int
    addr: str
    port: int
    source: str  # torchrun | slurm | local
    derived_port: bool  # the port was derived here (not given): rank 0 checks it is free


def derive_port(job_id: str) -> int:
    """PORT_BASE + job id % PORT_SPAN (consecutive job ids get distinct ports); a non-numeric id is hashed."""
    key = int(job_id) if str(job_id).isdigit() else int(hashlib.sha256(str(job_id).encode()).hexdigest()[:8], 16)
    return PORT_BASE + key % PORT_SPAN


def parse_node_list(text: str) -> list[str]:
    """SLURM's compressed host list: ``gpu[07-08,10],cpu3,rack[1-2]-n[01-02]`` -> host names, in order."""
    groups, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            groups.append(text[start:i])
            start = i + 1
    groups.append(text[start:])
    hosts: list[str] = []
    for group in filter(None, (g.strip() for g in groups)):
        m = re.match(r"^([^\[]*)\[([^\]]*)\](.*)$", group)
        if not m:
            hosts.append(group)
            continue
        prefix, ranges, rest = m.groups()
        for part in ranges.split(","):
            lo, _, hi = part.partition("-")
            width = len(lo)
            for n in range(int(lo), int(hi or lo) + 1):
                hosts += [f"{prefix}{n:0{width}d}{tail}" for tail in parse_node_list(rest) or [""]]
    return hosts


def rendezvous_from_env(env: Mapping[str, str] | None = None) -> Rendezvous | None:
    """The rendezvous the environment describes (see the module docstring), or None for one process."""
    env = os.environ if env is None else env
    if int(env.get("WORLD_SIZE", "1")) > 1:
        return Rendezvous(
            int(env["RANK"]),
            int(env["WORLD_SIZE"]),
            int(env.get("LOCAL_RANK", 0)),
            env.get("MASTER_ADDR", "127.0.0.1"),
            int(env.get("MASTER_PORT", 29500)),
            "torchrun",
            derived_port=False,
        )
    executor = env.get("SUBMITIT_EXECUTOR")
    if executor == "slurm" and int(env.get("SLURM_NTASKS", "1")) > 1:
        nodes = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or ""
        hosts = parse_node_list(nodes) or [socket.gethostname()]
        rank, world = int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"])
        local, addr, job = int(env.get("SLURM_LOCALID", 0)), hosts[0], env["SLURM_JOB_ID"]
    elif executor == "local" and int(env.get("SUBMITIT_LOCAL_NTASKS", "1")) > 1:
        rank, world = int(env["SUBMITIT_LOCAL_GLOBALID"]), int(env["SUBMITIT_LOCAL_NTASKS"])
        local, addr, job = int(env.get("SUBMITIT_LOCAL_LOCALID", 0)), "127.0.0.1", env["SUBMITIT_LOCAL_JOB_ID"]
    else:
        return None
    given = env.get("MASTER_PORT")
    return Rendezvous(
        rank,
        world,
        local,
        env.get("MASTER_ADDR") or addr,
        int(given) if given else derive_port(job),
        executor,
        derived_port=not given,
    )


def device_for(device_type: str, local_rank: int = 0) -> torch.device:
    """This rank's device: ``cuda:(local_rank % visible devices)``, or the CPU."""
    if device_type != "cuda":
        return torch.device("cpu")
    count = torch.cuda.device_count()
    if count < 1:
        raise ConfigError("train.device=cuda but no CUDA device is visible; use train.device=auto or cpu")
    return torch.device("cuda", local_rank % count)


def check_port_free(port: int) -> None:
    """Raise RendezvousError when something listens on ``port`` here (a port in TIME_WAIT is free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
        except OSError as e:
            raise RendezvousError(
                f"rendezvous port {port} on {socket.gethostname()} is in use ({e.strerror}), probably by "
                "another job on this node; set MASTER_PORT to a free port in the job's environment "
                "(e.g. sweep submit --setup 'export MASTER_PORT=...')"
            ) from None


_CONTEXT: DistributedContext | None = None


def init_distributed(
    device_type: str, env: Mapping[str, str] | None = None, timeout_s: float | None = None
) -> DistributedContext:
    """Initialise the default process group if the environment describes more than one process
    (once per process: later calls return the same context). Sets the CUDA device explicitly.
    ``timeout_s``: how long a rank waits in a collective for the others before it raises (None:
    torch's default, 10 min for NCCL and 30 min for gloo)."""
    global _CONTEXT
    if dist.is_available() and dist.is_initialized():
        if _CONTEXT is None:  # initialised by someone else (a test, a caller)
            local = int(os.environ.get("LOCAL_RANK", 0))
            return DistributedContext(dist.get_rank(), dist.get_world_size(), local, device_for(device_type, local))
        return _CONTEXT
    rdzv = rendezvous_from_env(env)
    device = device_for(device_type, rdzv.local_rank if rdzv else 0)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if rdzv is None:
        return DistributedContext(device=device)
    if rdzv.derived_port and rdzv.rank == 0:
        check_port_free(rdzv.port)
    os.environ.update(
        MASTER_ADDR=rdzv.addr,
        MASTER_PORT=str(rdzv.port),
        RANK=str(rdzv.rank),
        WORLD_SIZE=str(rdzv.world_size),
        LOCAL_RANK=str(rdzv.local_rank),
    )
    dist.init_process_group(
        backend="nccl" if device.type == "cuda" else "gloo",
        rank=rdzv.rank,
        world_size=rdzv.world_size,
        **({"device_id": device} if device.type == "cuda" else {}),
        **({"timeout": datetime.timedelta(seconds=timeout_s)} if timeout_s else {}),
    )
    _CONTEXT = DistributedContext(rdzv.rank, rdzv.world_size, rdzv.local_rank, device)
    return _CONTEXT


def shutdown_distributed() -> None:
    """Destroy the process group this module set up (end of a worker)."""
    global _CONTEXT
    if _CONTEXT is not None and dist.is_initialized():
        dist.destroy_process_group()
    _CONTEXT = None


def wrap_model(model: torch.nn.Module, ctx: DistributedContext, **ddp_options) -> torch.nn.Module:
    """DDP around ``model`` when there is more than one process (``device_ids``: this rank's device;
    ``ddp_options``: e.g. gradient_as_bucket_view, static_graph)."""
    if not ctx.enabled:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=ids, output_device=ids[0] if ids else None, **ddp_options
    )


def rank_seed(seed: int, rank: int) -> int:
    """A seed for rank ``rank`` of a run seeded ``seed``, independent of other seeds' ranks."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


def seed_rank(seed: int, ctx: DistributedContext) -> None:
    """Give ranks > 0 their own torch / numpy / python streams (dropout masks differ across ranks).
    Rank 0 keeps the stream seeded with ``seed`` (a one-process run is unchanged); data order never
    uses these generators (the loader has its own, seeded by (seed, epoch))."""
    if ctx.rank:
        s = rank_seed(seed, ctx.rank)
        torch.manual_seed(s)
        np.random.seed(s % 2**32)
        random.seed(s)


def all_gather_objects(obj, ctx: DistributedContext) -> list:
    if not ctx.enabled:
        return [obj]
    out = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj, ctx: DistributedContext, src: int = 0):
    """Rank ``src``'s ``obj`` on every rank (a collective: every rank waits for ``src``)."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def broadcast_buffers(model: torch.nn.Module, ctx: DistributedContext) -> None:
    """Every rank takes rank 0's buffers (BatchNorm running statistics), e.g. before evaluation:
    after a training step each rank's running statistics follow its own batch."""
    if not ctx.enabled:
        return
    for buf in model.buffers():
        dist.broadcast(buf.data, src=0)


def barrier(ctx: DistributedContext) -> None:
    if ctx.enabled:
        dist.barrier()
