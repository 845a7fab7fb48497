"""Progress of a long command: a tqdm bar where a person watches a terminal, plain lines where nobody does.

``progress(total, desc, unit)`` draws a bar when stderr is a terminal; off one (a pipe, a log file, a
SLURM job's output) a bar would fill the file with carriage-return redraws, so it writes one plain line
at every tenth of the way and at the end instead: ``checking videos: 120/600 videos (20%, 3 s)``.
``enabled=False`` (``--quiet``) shows neither. Used by ``data check``, ``data synth``, ``data prepare
--check`` and evaluation (``harness.engine.evaluate.predict``).
"""

from __future__ import annotations

import sys
import time


class _Lines:
    """The bar's interface (update, set_postfix, close) as plain lines on ``stream``."""

    def __init__(self, total: int, desc: str, unit: str, stream, every: float = 0.1):
        self.total, self.desc, self.unit, self.stream = total, desc, unit, stream
        self.n, self.t0, self.every, self.shown = 0, time.time(), every, 0
        self.postfix = ""

    def update(self, n: int = 1) -> None:
        self.n += n
        step = max(int(self.total * self.every), 1)
        if self.n >= self.total or self.n // step > self.shown // step:
            self._line()

    def set_postfix(self, refresh: bool = True, **values) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())

    def _line(self) -> None:
        if self.n == self.shown:
            return
        self.shown = self.n
        pct = f"{100 * self.n / self.total:.0f}%, " if self.total else ""
        extra = f", {self.postfix}" if self.postfix else ""
        print(
            f"{self.desc}: {self.n}/{self.total} {self.unit}s ({pct}{time.time() - self.t0:.0f} s{extra})",
            file=self.stream,
            flush=True,
        )

    def close(self) -> None:
        if self.n:
            self._line()


class _Off:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, refresh: bool = True, **values) -> None:
        pass

    def close(self) -> None:
        pass


def progress(total: int, desc: str, unit: str, *, enabled: bool = True, leave: bool = True, stream=None):
    """A progress display of ``total`` items: tqdm on a terminal, plain lines elsewhere, nothing when not
    ``enabled``. ``stream`` defaults to stderr."""
    stream = sys.stderr if stream is None else stream
    if not enabled:
        return _Off()
    if getattr(stream, "isatty", lambda: False)():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, leave=leave, file=stream, dynamic_ncols=True)
    return _Lines(total, desc, unit, stream)
