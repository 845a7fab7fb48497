"""The training log and its sinks: rank 0's lines to the run's log.txt (and stdout), numbers to TensorBoard
and W&B (``train.log_to``)."""

from __future__ import annotations

import functools
import logging
import os

from harness.engine.distributed import DistributedContext
from harness.errors import ConfigError
from harness.results.rundir import RunDir

LOGGER = logging.getLogger("harness.train")
"""The training log: rank 0's lines, written to the run's log.txt and (``echo``) to stdout while a run
trains, and passed on to the handlers of the logging tree like any library logger's."""


class _RunLogHandler(logging.Handler):
    """A handler of ``LOGGER`` for one run: log.txt, or stdout (records logged with ``echo=False``
    stay out of it, e.g. step lines while a progress bar is drawn)."""

    def __init__(self, rd: RunDir | None):
        super().__init__(logging.INFO)
        self.rd = rd
        self.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            if self.rd is not None:
                self.rd.log(line)
            elif getattr(record, "echo", True):
                print(line, flush=True)
        except Exception:  # logging's own rule: a handler never raises into the program
            self.handleError(record)


class RunLog:
    """Rank 0's log of a run: ``log(msg)`` is a line of ``LOGGER``; ``scalars`` / ``hparams`` also go to the
    sinks of ``train.log_to`` (TensorBoard under tb/, W&B under wandb/). Ranks > 0 write nothing. Handlers
    and sinks live until :meth:`close` (``train_and_evaluate`` closes them however it ends)."""

    active: list[RunLog] = []

    def __init__(self, rd: RunDir, ctx: DistributedContext, echo: bool):
        self.rd, self.ctx, self.echo = rd, ctx, echo
        self.handlers: list[logging.Handler] = []
        self.sinks: dict[str, object] = {}
        if ctx.is_main:
            self.handlers = [_RunLogHandler(rd)] + ([_RunLogHandler(None)] if echo else [])
            for h in self.handlers:
                LOGGER.addHandler(h)
            if LOGGER.getEffectiveLevel() > logging.INFO:
                LOGGER.setLevel(logging.INFO)
        RunLog.active.append(self)

    def __call__(self, msg: str, *, echo: bool = True) -> None:
        if self.ctx.is_main:
            LOGGER.info(msg, extra={"echo": echo})

    def open_sinks(self, names: tuple[str, ...], cfg: dict, purge_step: int | None) -> None:
        """Start the sinks of ``train.log_to`` (rank 0), continuing a resumed run's: TensorBoard drops
        its earlier events from ``purge_step`` on."""
        if not self.ctx.is_main:
            return
        if "tensorboard" in names:
            from torch.utils.tensorboard import SummaryWriter

            self.sinks["tensorboard"] = SummaryWriter(str(self.rd.path / "tb"), purge_step=purge_step)
        if "wandb" in names:
            import wandb

            self.sinks["wandb"] = wandb.init(
                project=os.environ.get("WANDB_PROJECT", "dsa-harness"),
                name=str(cfg.get("run_id") or self.rd.run_id),
                group=cfg.get("grid"),
                dir=str(self.rd.path),
                config=cfg,
                mode=os.environ.get("WANDB_MODE", "offline"),
                reinit="create_new",
                settings=wandb.Settings(console="off"),  # our lines are in log.txt; stdout stays ours
            )

    def scalars(self, values: dict, step: int) -> None:
        """Numbers (``"train/loss": 0.3``, ...) at optimiser step ``step`` to every sink."""
        values = {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if "tensorboard" in self.sinks:
            for k, v in values.items():
                self.sinks["tensorboard"].add_scalar(k, v, step)
        if "wandb" in self.sinks:
            self.sinks["wandb"].log(values, step=step)

    def hparams(self, hparams: dict, metrics: dict) -> None:
        """The run's settings with its final numbers (TensorBoard's HPARAMS tab; W&B's run summary)."""
        metrics = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if "tensorboard" in self.sinks:
            plain = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in hparams.items()}
            self.sinks["tensorboard"].add_hparams(plain, {f"hparam/{k}": v for k, v in metrics.items()}, run_name=".")
        if "wandb" in self.sinks:
            self.sinks["wandb"].summary.update(metrics)

    def close(self, failed: bool = False) -> None:
        for h in self.handlers:
            LOGGER.removeHandler(h)
            h.close()
        self.handlers = []
        if "tensorboard" in self.sinks:
            self.sinks.pop("tensorboard").close()
        if "wandb" in self.sinks:
            self.sinks.pop("wandb").finish(exit_code=1 if failed else 0)
        if self in RunLog.active:
            RunLog.active.remove(self)

    @staticmethod
    def scoped(fn):
        """Close the logs ``fn`` opened when it returns or raises (so a process running runs in turn never
        writes one run's lines into another's log.txt)."""

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            before = list(RunLog.active)
            failed = True
            try:
                out = fn(*args, **kwargs)
                failed = False
                return out
            finally:
                for log in [g for g in RunLog.active if g not in before]:
                    log.close(failed=failed)

        return wrapper


def check_sinks(names: tuple[str, ...]) -> None:
    """Refuse (every rank, before anything runs) a sink whose optional package is not installed."""
    import importlib.util

    for name, module in (("tensorboard", "tensorboard"), ("wandb", "wandb")):
        if name in names and importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"train.log_to={name}: the {module} package is not installed: pip install 'dsa-harness[{name}]' "
                f"(or drop {name} from train.log_to)"
            )
