"""Which checkpoint a run resumes from, and whose it is: the latest readable one (the previous one when the
latest is corrupt), chosen by rank 0 and read by every rank; another run's checkpoint is refused."""

from __future__ import annotations

from pathlib import Path

from harness.engine.checkpoint import PREV_CHECKPOINT, CheckpointError, load_checkpoint
from harness.engine.distributed import DistributedContext, broadcast_object
from harness.results.rundir import RunDir


def load_resume_state(
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
    """Refuse a checkpoint of another run (see :func:`load_resume_state`)."""
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
