"""Engine: training with exact resume, multi-view evaluation, checkpoints, DDP set-up."""

from harness.engine.config import DataConfig, EvalConfig, TrainConfig, resolve_run_config
from harness.engine.evaluate import classification_metrics, topk_accuracy
from harness.engine.train import STOP, TrainingInterrupted, train_and_evaluate

__all__ = ["STOP", "DataConfig", "EvalConfig", "TrainConfig", "TrainingInterrupted", "classification_metrics",
           "resolve_run_config", "topk_accuracy", "train_and_evaluate"]
