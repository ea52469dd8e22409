"""Projection and classification heads."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ProjectionHead(nn.Module):
    """MLP projector ``num_layers`` deep (Linear-BN-ReLU blocks, then Linear), L2-normalised output.

    Args:
        in_dim: backbone feature dimension.
        hidden_dim: width of the hidden layers.
        out_dim: projection dimension.
        num_layers: number of Linear layers (1 = a single linear map).
        normalize: L2-normalise the output (as every contrastive loss here expects).

    Shape:
        (B, in_dim) → (B, out_dim).
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int = 256,
        out_dim: int = 256,
        num_layers: int = 2,
        *,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers: {num_layers} — must be >= 1")
        layers: list[nn.Module] = []
        d = in_dim
        for _ in range(num_layers - 1):
            layers += [nn.Linear(d, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim), nn.ReLU()]
            d = hidden_dim
        layers.append(nn.Linear(d, out_dim))
        self.net = nn.Sequential(*layers)
        self.normalize = normalize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(x)
        return F.normalize(z, dim=1) if self.normalize else z


def classifier_head(in_dim: int, num_classes: int) -> nn.Linear:
    """A linear classifier (B, in_dim) → (B, num_classes)."""
    return nn.Linear(in_dim, num_classes)
