import math

import pytest
import torch

from t2l_fast.training.metrics import (
    confusion_matrix,
    first_occurrences,
    harmonic_mean,
    mean_std,
    per_class_accuracy,
    topk_accuracy,
)


def test_topk_hand_computed():
    scores = torch.tensor([[0.1, 0.7, 0.2],   # label 1: top-1 hit
                           [0.5, 0.3, 0.2],   # label 1: second -> top-2 hit only
                           [0.6, 0.3, 0.1]])  # label 2: last -> miss
    result = topk_accuracy(scores, torch.tensor([1, 1, 2]), ks=(1, 2, 5))
    assert result == pytest.approx({"top1": 1 / 3, "top2": 2 / 3, "top5": 1.0})  # k=5 capped at C=3


def test_confusion_and_per_class():
    predictions, labels = torch.tensor([0, 1, 1, 2, 0]), torch.tensor([0, 1, 0, 2, 0])
    confusion = confusion_matrix(predictions, labels, 4)
    assert confusion.tolist() == [[2, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    accuracy = per_class_accuracy(confusion)
    assert accuracy[:3].tolist() == pytest.approx([2 / 3, 1.0, 1.0]) and math.isnan(accuracy[3])


def test_split_mean_std_and_harmonic_mean():
    assert mean_std([50.0, 52.0, 54.0]) == pytest.approx((52.0, math.sqrt(8 / 3)))
    assert harmonic_mean(73.1, 60.6) == pytest.approx(2 * 73.1 * 60.6 / 133.7)
    assert harmonic_mean(94.4, 77.9) == pytest.approx(85.36, abs=0.01)  # T2L's UCF B2N row recomputes
    assert harmonic_mean(0.0, 0.0) == 0.0


def test_first_occurrences_counts_each_video_once():
    indices = torch.tensor([3, 0, 1, 3, 2, 0])
    assert first_occurrences(indices).tolist() == [True, True, True, False, True, False]
