"""Multi-view evaluation and classification metrics.

A test sample is (V*U, C, T, H, W) with V = groups x crops views, each view's U snippets consecutive.
Scores are the softmax probabilities averaged over the V views (spec section 5).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from harness.data import build_loader
from harness.data.transforms import split_views
from harness.engine.distributed import DistributedContext, all_gather_objects, broadcast_buffers
from harness.report.stats import accuracy_intervals, wilson_interval
from harness.results.predictions import build_columns, per_class_accuracy


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Percentage of rows whose label is among the k highest scores (ties broken by index order)."""
    if len(labels) == 0:
        return float("nan")
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean() * 100)


def classification_metrics(scores: np.ndarray, labels: np.ndarray, factors: dict[str, list[str]] | None = None) -> dict:
    """top-1, top-5, mean class accuracy (over classes present; per-class accuracy and the confusion matrix
    are derived from a predictions file on demand: ``harness.results.predictions``, the same functions);
    with ``factors`` ({factor name: factor value of each class}), the accuracy of each factor of the
    predicted class (e.g. the *order* part of a synthetic label)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    num_classes = scores.shape[1]
    pred = scores.argmax(axis=1)
    per_class = per_class_accuracy(labels, pred, num_classes)
    out = {
        "top1": topk_accuracy(scores, labels, 1),
        "top5": topk_accuracy(scores, labels, 5),
        "mean_class_acc": float(np.nanmean(per_class)) if (~np.isnan(per_class)).any() else float("nan"),
        "num_videos": int(len(labels)),
    }
    if len(labels):  # 95% intervals over the scored videos (harness.report.stats: Wilson, seeded bootstrap)
        top5 = np.argsort(-scores, axis=1, kind="stable")[:, : min(5, num_classes)]
        intervals = accuracy_intervals(labels, pred, top5, num_classes)
        out.update({k: float(v) for k, v in intervals.items() if k.endswith(("_ci_low", "_ci_high"))})
        out["ci_method"], out["confidence"] = intervals["ci_method"], intervals["confidence"]
    if factors:
        out["groups"] = {}
        for name, values in factors.items():
            values = np.asarray(values)
            right = values[pred] == values[labels]
            low, high = wilson_interval(int(right.sum()), len(right))
            out["groups"][name] = {
                "top1": float(right.mean() * 100),
                "top1_ci_low": float(low),
                "top1_ci_high": float(high),
            }
    return out


@torch.no_grad()
def predict(
    model: nn.Module,
    batches: Iterable,
    *,
    views: int,
    device: torch.device,
    normalize,
    amp_dtype: torch.dtype | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run ``model`` over ``batches`` of (uint8 (N, V*U, C, T, H, W), labels, indices).

    Returns (scores (M, K) averaged softmax over views, labels (M,), dataset indices (M,)).
    """
    model.eval()
    all_scores, all_labels, all_index = [], [], []
    bar = _progress_on_a_terminal(batches)
    for clips, labels, index in batches:
        n = clips.shape[0]
        x = split_views(normalize(clips.to(device, non_blocking=True)), clips.shape[1] // views)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(x)
        probs = torch.softmax(logits.float(), dim=-1).reshape(n, views, -1).mean(dim=1)
        all_scores.append(probs.cpu().numpy())
        all_labels.append(np.asarray(labels))
        all_index.append(np.asarray(index))
        bar.update()
    bar.close()
    if not all_scores:
        return np.zeros((0, 0)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(all_scores), np.concatenate(all_labels), np.concatenate(all_index)


def _progress_on_a_terminal(batches: Iterable):
    """A bar over the batches where a person watches (stderr a terminal, rank 0 of a distributed run);
    none elsewhere: validation runs every few epochs and its result is a line of the training log."""
    import sys

    from harness.data.progress import progress

    rank0 = not (torch.distributed.is_available() and torch.distributed.is_initialized()) or (
        torch.distributed.get_rank() == 0
    )
    total = len(batches) if hasattr(batches, "__len__") else 0
    return progress(total, "evaluating", "batch", enabled=sys.stderr.isatty() and rank0, leave=False)


def evaluate_dataset(
    model: nn.Module,
    dataset: Dataset,
    *,
    views: int,
    batch_size: int,
    data,
    device: torch.device,
    ctx: DistributedContext,
    seed: int,
    workers: int,
    amp_dtype,
    save_scores: bool = False,
) -> tuple[dict, dict]:
    """Evaluate on this rank's shard (no padding) with ``workers`` loader processes and autocast ``amp_dtype``
    (None: full precision), gather all shards, score each video exactly once. ``data``: the run's
    ``harness.engine.datasets.RunData`` (its normaliser and label factors). Returns (the aggregates, the
    per-video columns of ``harness.results.predictions.build_columns``: one row per listed video, in list
    order, the skipped ones as skipped rows; ``scores`` too with ``save_scores``), the same on every rank."""
    broadcast_buffers(model, ctx)  # every rank scores with rank 0's BatchNorm statistics
    loader = build_loader(
        dataset,
        batch_size,
        shuffle=False,
        seed=seed,
        num_workers=workers,
        rank=ctx.rank,
        world_size=ctx.world_size,
        device=device,
    )
    model = model.to(device)
    batches = (b for b in loader if len(b[2]))  # a batch of videos all left out as unreadable is empty
    scores, labels, index = predict(
        model, batches, views=views, device=device, normalize=data.normalize, amp_dtype=amp_dtype
    )
    skipped = dataset.pop_skipped() if hasattr(dataset, "pop_skipped") else []  # (on_error=skip: left out)
    scores, labels, index, skipped = _gather_shards(all_gather_objects((scores, labels, index, skipped), ctx), dataset)
    metrics = classification_metrics(scores, labels, data.factors)  # num_videos: the videos scored
    metrics["loss"] = float(-np.log(np.clip(scores[np.arange(len(labels)), labels], 1e-12, None)).mean())
    metrics["num_skipped"] = len(skipped)
    metrics["skipped_videos"] = [{"path": s["path"], "line": s["line"], "reason": s["reason"]} for s in skipped]
    root = dataset.root  # a VideoDataset: its records in list order
    lines, paths = [r.line for r in dataset.records], [_listed_path(r.path, root) for r in dataset.records]
    columns = build_columns(
        lines=lines,
        paths=paths,
        labels=dataset.labels,
        scored_index=index,
        scores=scores,
        skipped={s["index"]: s["reason"] for s in skipped},
        save_scores=save_scores,
    )
    return metrics, columns


def _gather_shards(parts: list, dataset: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
    """Every rank's (scores, labels, list positions, skipped videos) in list order, checked to cover each
    listed video exactly once; none readable at all is a ``CorruptVideoError`` naming the first."""
    skipped = sorted((s for p in parts for s in p[3]), key=lambda s: s["index"])
    if not any(len(p[2]) for p in parts):
        from harness.data.video import CorruptVideoError

        raise CorruptVideoError(
            skipped[0]["path"] if skipped else str(getattr(dataset, "annotation_file", "")),
            skipped[0]["reason"] if skipped else "undecodable",
            f"none of the {len(dataset)} videos to evaluate could be read",
            f"{skipped[0]['annotation']}:{skipped[0]['line']}" if skipped else "",
        )
    scores = np.concatenate([p[0] for p in parts if len(p[2])])
    labels = np.concatenate([p[1] for p in parts if len(p[2])])
    index = np.concatenate([p[2] for p in parts if len(p[2])])
    order = np.argsort(index, kind="stable")
    scores, labels, index = scores[order], labels[order], index[order]
    covered = set(index.tolist()) | {s["index"] for s in skipped}
    if len(np.unique(index)) != len(index) or len(covered) != len(dataset) or len(covered) != len(index) + len(skipped):
        raise RuntimeError(
            f"evaluation covered {len(covered)} of {len(dataset)} videos ({len(index)} predictions, "
            f"{len(skipped)} unreadable)"
        )
    return scores, labels, index, skipped


def _listed_path(path: str, root: str | None) -> str:
    """A record's path as its list gives it: relative to the dataset root where the list's path was."""
    if root:
        prefix = os.path.join(root, "")
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path
