"""extract_features: the one feature extraction (loaders of (x, y[, index]) batches or datasets)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from ftsweep.engine import extract_features, make_loader


class _Backbone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.bn(self.conv(x))).mean(dim=(2, 3))


def test_extract_features_eval_mode_no_grad() -> None:
    torch.manual_seed(0)
    model = _Backbone()
    images = torch.randn(10, 3, 8, 8)
    labels = torch.arange(10) % 3
    feats, labs = extract_features(model, TensorDataset(images, labels), batch_size=4)
    assert feats.shape == (10, 4) and feats.dtype == np.float32
    assert labs.dtype == np.int64
    np.testing.assert_array_equal(labs, labels.numpy())
    model.eval()
    with torch.no_grad():
        expected = model(images).numpy()
    np.testing.assert_allclose(feats, expected, rtol=1e-5, atol=1e-6)
    model.train()
    extract_features(model, TensorDataset(images, labels))
    assert model.training  # mode restored
    assert all(p.grad is None for p in model.parameters())


def test_extract_features_rejects_non_2d_output() -> None:
    model = nn.Conv2d(3, 2, 1)
    data = TensorDataset(torch.randn(2, 3, 4, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        extract_features(model, data)


class _Indexed(TensorDataset):
    """``(x, y, index)`` items, like a ViewDataset."""

    def __getitem__(self, i: int):
        x, y = super().__getitem__(i)
        return x, y, i


def test_loaders_of_triples_and_functions_give_the_same_features() -> None:
    torch.manual_seed(0)
    model = _Backbone().eval()
    images, labels = torch.randn(9, 3, 8, 8), torch.arange(9) % 2
    ref, ref_y = extract_features(model, TensorDataset(images, labels), batch_size=4)
    loader = make_loader(_Indexed(images, labels), batch_size=4, shuffle=False)
    feats, ys = extract_features(lambda x: model(x), loader, "cpu")
    assert feats.dtype == np.float32 and ys.dtype == np.int64
    np.testing.assert_allclose(feats, ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(ys, ref_y)


def test_empty_data_and_bad_batch_size_raise() -> None:
    empty = TensorDataset(torch.randn(0, 3, 4, 4), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="empty"):
        extract_features(nn.Flatten(), empty)
    with pytest.raises(ValueError, match="batch_size"):
        extract_features(nn.Flatten(), empty, batch_size=0)
