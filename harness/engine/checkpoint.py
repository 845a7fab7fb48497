"""Checkpoints: written atomically, read with ``weights_only=True``, exact-resume state included."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import numpy as np
import torch

from harness.engine.distributed import DistributedContext, all_gather_objects, seed_rank
from harness.errors import HarnessError
from harness.results.rundir import atomic_write_bytes

PREV_CHECKPOINT = "checkpoint.prev.pt"
"""The checkpoint before the latest (kept when a new one is written): resumed from when the latest is corrupt."""


class CheckpointError(HarnessError, RuntimeError):
    """A checkpoint file that cannot be read (truncated, corrupt, not a checkpoint); the message names it
    and the fix. The file is left in place."""


def rng_state() -> dict:
    """This process's generators: torch (CPU), numpy, python and, on CUDA, the *current* device's only
    (a node that sees fewer GPUs than the one that saved the checkpoint can restore it)."""
    state = {
        "torch": torch.get_rng_state(),
        "numpy": _numpy_state(),
        "python": _python_state(),
    }
    if torch.cuda.is_available():
        state["cuda_device"] = torch.cuda.get_rng_state(torch.cuda.current_device())
    return state


def _numpy_state() -> dict:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "name": name,
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached": float(cached),
    }


def _python_state() -> dict:
    version, internal, gauss = random.getstate()
    return {
        "version": version,
        "internal": torch.tensor(internal, dtype=torch.int64),
        "gauss": gauss if gauss is None else float(gauss),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["internal"].tolist()), p["gauss"]))
    if torch.cuda.is_available():
        cuda = state.get("cuda_device")
        if cuda is None and state.get("cuda"):  # older checkpoints: every visible device's state
            states = state["cuda"]
            cuda = states[min(torch.cuda.current_device(), len(states) - 1)]
        if cuda is not None:
            torch.cuda.set_rng_state(cuda, torch.cuda.current_device())


def gather_rng_states(ctx: DistributedContext) -> list[dict]:
    """Every rank's :func:`rng_state`, in rank order (a collective: call it on every rank)."""
    return all_gather_objects(rng_state(), ctx)


def restore_rng_states(state: dict, ctx: DistributedContext, seed: int) -> None:
    """Restore this rank's generators from a checkpoint: its own entry of ``rng_ranks`` when the
    checkpoint was written by as many ranks; else rank 0's ``rng`` and, on ranks > 0, a fresh
    per-rank seed (``distributed.seed_rank``)."""
    ranks = state.get("rng_ranks")
    if ranks and len(ranks) == ctx.world_size:
        set_rng_state(ranks[ctx.rank])
        return
    set_rng_state(state["rng"])
    seed_rank(seed, ctx)


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Serialise to memory, then temp file + fsync + rename: the previous checkpoint survives a crash."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """The state dict written by :func:`save_checkpoint`. Raises FileNotFoundError when absent and
    :class:`CheckpointError` when it cannot be read as one."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - truncated / corrupt / not a checkpoint
        reason = (str(e).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(
            f"cannot read checkpoint {path} ({type(e).__name__}: {reason}); "
            "the file was left untouched — move it away to restart the run from scratch"
        ) from e
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{path} is not a checkpoint of this harness (a {type(state).__name__}, not a dict); "
            "the file was left untouched — move it away to restart the run from scratch"
        )
    return state
