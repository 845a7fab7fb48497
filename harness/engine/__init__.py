"""Engine: training with exact resume, multi-view evaluation, checkpoints, DDP set-up.

Names are imported on first use (PEP 562), so that importing one submodule (the CLI imports
``harness.engine.commands``) does not pull in torch."""

from harness.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "classification_metrics": "harness.engine.evaluate",
        "topk_accuracy": "harness.engine.evaluate",
        "STOP": "harness.engine.train",
        "TrainingInterrupted": "harness.engine.train",
        "open_run_dir": "harness.engine.train",
        "train_and_evaluate": "harness.engine.train",
    },
)
