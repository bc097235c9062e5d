"""Evaluation metrics: top-k accuracy, per-class accuracy, confusion matrix, split mean +- std, harmonic mean."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """{"top1": ..., "top5": ...}: share of rows whose label is among the k highest scores (k capped at C)."""
    ranked = scores.topk(min(max(ks), scores.shape[1]), dim=1).indices  # [N, k]
    hits = ranked == labels[:, None]
    return {f"top{k}": hits[:, :k].any(dim=1).float().mean().item() for k in ks}


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[C, C] counts: row = true class, column = predicted class."""
    flat = labels.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def per_class_accuracy(confusion: torch.Tensor) -> torch.Tensor:
    """[C] recall of each class (NaN for a class with no videos)."""
    totals = confusion.sum(dim=1).float()
    return confusion.diag().float() / totals.where(totals > 0, torch.tensor(float("nan")))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation (numpy's default, ddof=0) over splits or seeds."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std())


def harmonic_mean(base: float, novel: float) -> float:
    """Base-to-novel HM = 2BN / (B + N) (0 when both are 0)."""
    return 0.0 if base + novel == 0 else 2 * base * novel / (base + novel)


def first_occurrences(indices: torch.Tensor) -> torch.Tensor:
    """Boolean mask keeping the first row of every dataset index: evaluation shards wrap around, and a clip
    replaced after a decoding failure repeats another's index, yet each video must count once."""
    order = torch.arange(len(indices))
    first = torch.full((int(indices.max()) + 1,), len(indices), dtype=torch.long)
    first.scatter_reduce_(0, indices.long(), order, reduce="amin")
    return first[indices.long()] == order
