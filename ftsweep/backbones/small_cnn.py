"""A small CPU-friendly CNN backbone for 32×32 inputs (the default for digits)."""

from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """Conv-BN-ReLU blocks, a stride-``stem_stride`` first block and 2× max-pooling between the
    following blocks, then global average pooling.

    The default (32, 64, 128) with a stride-2 stem costs ~2.6 MFLOPs per 32×32 image: the
    digits are 8×8 images upsampled to 32×32, so full-resolution early layers would waste time.

    Args:
        widths: output channels of each conv block.
        in_chans: input channels.
        stem_stride: stride of the first conv.

    Shape:
        input (B, in_chans, H, W) → output (B, widths[-1]) = (B, ``num_features``).
    """

    def __init__(
        self, widths: tuple[int, ...] = (32, 64, 128), in_chans: int = 3, stem_stride: int = 2
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_chans
        for i, w in enumerate(widths):
            if i > 0:
                layers.append(nn.MaxPool2d(2))
            stride = stem_stride if i == 0 else 1
            layers += [
                nn.Conv2d(c, w, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(w),
                nn.ReLU(),
            ]
            c = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x)).flatten(1)
