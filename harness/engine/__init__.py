"""Engine: training with exact resume, multi-view evaluation, checkpoints, DDP set-up.

Names are imported on first use (PEP 562), so that importing one submodule (the CLI imports
``harness.engine.commands``) does not pull in torch."""

from __future__ import annotations

import importlib

_EXPORTS = {  # public name -> (module, name in the module)
    "classification_metrics": ("harness.engine.evaluate", "classification_metrics"),
    "topk_accuracy": ("harness.engine.evaluate", "topk_accuracy"),
    "STOP": ("harness.engine.train", "STOP"),
    "TrainingInterrupted": ("harness.engine.train", "TrainingInterrupted"),
    "open_run_dir": ("harness.engine.train", "open_run_dir"),
    "train_and_evaluate": ("harness.engine.train", "train_and_evaluate"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module, attr = _EXPORTS[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'harness.engine' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
