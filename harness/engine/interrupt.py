"""Stopping a run cleanly: the stop request a signal handler sets, the exception raised once the
checkpoint is on disk, and the fault-injection pause that tests of interruption use."""

from __future__ import annotations

import os
import threading
import time

from harness.errors import UsageError
from harness.results.rundir import RunDir

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


def pause_after_checkpoint(rd: RunDir, epoch: int, step: int, log) -> None:
    """The ``PAUSE_ENV`` hook, called by the main process right after each checkpoint."""
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
