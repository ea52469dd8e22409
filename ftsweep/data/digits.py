"""scikit-learn's ``digits`` (1,797 real 8×8 handwritten digits) as 3×32×32 ``uint8`` images.

The data ships inside scikit-learn, so it works offline. The test part is a stratified 20 % split
fixed by :data:`DIGITS_TEST_SEED`, independent of any trial seed, so every trial, the
self-supervised pretraining pool and every sweep agree on which images are test images.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ftsweep.data.registry import DatasetInfo, LoadedDataset, register_dataset

DIGITS_TEST_SEED = 0
DIGITS_TEST_FRACTION = 0.2


class TensorImageDataset(Dataset):
    """``(image, label)`` pairs from a uint8 tensor of shape (N, C, H, W)."""

    def __init__(self, images: torch.Tensor, targets: np.ndarray) -> None:
        assert images.dtype == torch.uint8 and images.ndim == 4, "images must be uint8 (N,C,H,W)"
        assert len(images) == len(targets), "images and targets must have the same length"
        self.images = images
        self.targets = np.asarray(targets, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.targets[index])


@lru_cache(maxsize=1)
def digits_images() -> tuple[torch.Tensor, np.ndarray]:
    """All 1,797 digits as uint8 (1797, 3, 32, 32) images and int64 labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)  # (N,1,8,8)
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    return x, bunch.target.astype(np.int64)


def digits_test_mask(targets: np.ndarray) -> np.ndarray:
    """Boolean mask of the fixed stratified test part."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(targets))
    _, test_idx = train_test_split(
        idx, test_size=DIGITS_TEST_FRACTION, stratify=targets, random_state=DIGITS_TEST_SEED
    )
    mask = np.zeros(len(targets), dtype=bool)
    mask[test_idx] = True
    return mask


def load_digits_dataset(root: str = "", download: bool = False) -> LoadedDataset:
    """Load digits (``root`` and ``download`` are ignored: the data is inside scikit-learn)."""
    del root, download
    images, targets = digits_images()
    test = digits_test_mask(targets)
    train_t, test_t = targets[~test], targets[test]
    return LoadedDataset(
        train=TensorImageDataset(images[torch.from_numpy(~test)], train_t),
        test=TensorImageDataset(images[torch.from_numpy(test)], test_t),
        train_targets=train_t,
        test_targets=test_t,
        class_names=tuple(str(i) for i in range(10)),
    )


DIGITS = register_dataset(
    DatasetInfo(
        name="digits",
        num_classes=10,
        load=load_digits_dataset,
        image_size=32,
        num_train=1437,
        num_test=360,
        mean=(0.305, 0.305, 0.305),
        std=(0.324, 0.324, 0.324),
        hflip=False,
        grayscale=True,
        offline=True,
        description="scikit-learn digits, 8x8 upsampled to 3x32x32 (embedded, offline)",
    )
)
