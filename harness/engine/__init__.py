"""Engine: training with exact resume, multi-view evaluation, checkpoints, DDP set-up."""

from harness.engine.evaluate import classification_metrics, topk_accuracy
from harness.engine.train import STOP, TrainingInterrupted, open_run_dir, train_and_evaluate

__all__ = ["STOP", "TrainingInterrupted", "classification_metrics", "open_run_dir", "topk_accuracy",
           "train_and_evaluate"]
