import numpy as np
import pytest
import torch

from ftsweep.metrics import mean_per_class_accuracy, top1_accuracy, topk_accuracy


def test_top1_accuracy_hand_computed() -> None:
    y_true = np.array([0, 1, 2, 2, 1])
    y_pred = np.array([0, 2, 2, 2, 0])
    assert top1_accuracy(y_true, y_pred) == pytest.approx(3 / 5)


def test_mean_per_class_accuracy_hand_computed() -> None:
    # class 0: 3/4 correct, class 1: 1/1, class 2: 0/2 -> (0.75 + 1 + 0) / 3.
    # Label 5 is only predicted, never true: it is not a class of the mean.
    y_true = np.array([0, 0, 0, 0, 1, 2, 2])
    y_pred = np.array([0, 0, 0, 1, 1, 5, 0])
    assert mean_per_class_accuracy(y_true, y_pred) == pytest.approx((0.75 + 1.0 + 0.0) / 3)
    # top-1 differs on imbalanced data: 4 / 7
    assert top1_accuracy(y_true, y_pred) == pytest.approx(4 / 7)


def test_topk_accuracy_hand_computed() -> None:
    logits = np.array(
        [
            [0.1, 0.5, 0.4],  # ranking 1, 2, 0
            [0.9, 0.05, 0.05],  # ranking 0, ...
            [0.2, 0.3, 0.5],  # ranking 2, 1, 0
            [0.3, 0.3, 0.4],  # ranking 2, then 0/1 tie
        ]
    )
    y_true = np.array([2, 0, 0, 2])
    assert topk_accuracy(logits, y_true, 1) == pytest.approx(2 / 4)
    assert topk_accuracy(logits, y_true, 2) == pytest.approx(3 / 4)
    assert topk_accuracy(logits, y_true, 3) == pytest.approx(1.0)
    assert topk_accuracy(logits, y_true, 1) == top1_accuracy(y_true, logits.argmax(axis=1))


def test_accepts_torch_tensors() -> None:
    y_true = torch.tensor([0, 1, 1, 0])
    y_pred = torch.tensor([0, 1, 0, 0])
    logits = torch.tensor([[2.0, 1.0], [0.0, 1.0], [3.0, 1.0], [1.0, 0.0]])
    assert top1_accuracy(y_true, y_pred) == pytest.approx(0.75)
    assert mean_per_class_accuracy(y_true, y_pred) == pytest.approx((1.0 + 0.5) / 2)
    result = topk_accuracy(logits, y_true, 1)
    assert isinstance(result, float) and result == pytest.approx(0.75)


@pytest.mark.parametrize("fn", [top1_accuracy, mean_per_class_accuracy])
def test_bad_label_inputs_raise(fn) -> None:
    with pytest.raises(ValueError, match="y_true and y_pred must have the same length"):
        fn(np.array([0, 1]), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="y_true must be non-empty"):
        fn(np.array([]), np.array([]))


def test_topk_bad_inputs_raise() -> None:
    logits = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"k must be in \[1, num_classes=4\] but is 5"):
        topk_accuracy(logits, np.array([0, 1, 2]), 5)
    with pytest.raises(ValueError, match="logits and y_true must have the same length"):
        topk_accuracy(logits, np.array([0, 1]), 1)
    with pytest.raises(ValueError, match=r"y_true must hold integer labels in \[0, 4\)"):
        topk_accuracy(logits, np.array([0, 1, 4]), 1)
    with pytest.raises(ValueError, match="logits must be a 2-d array"):
        topk_accuracy(np.zeros(3), np.array([0, 1, 2]), 1)
