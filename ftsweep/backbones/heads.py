"""Projection and classification heads."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def projection_mlp(
    in_dim: int, hidden_dim: int, out_dim: int, num_layers: int, *, batch_norm: bool = False
) -> nn.Sequential:
    """The MLP projector every method uses: ``num_layers - 1`` hidden blocks, then a Linear.

    A hidden block is (Linear, ReLU) — COIN's g and Core-tuning's G_c, no BatchNorm as in their
    public code, so each sample's projection does not depend on the rest of the batch — or,
    with ``batch_norm``, (Linear without bias, BatchNorm1d, ReLU) (:class:`ProjectionHead`).
    The output is not normalised.

    Args:
        in_dim: backbone feature dimension.
        hidden_dim: width of the hidden layers.
        out_dim: projection dimension.
        num_layers: number of Linear layers (1 = a single linear map).
        batch_norm: BatchNorm after every hidden Linear.

    Shape:
        (B, in_dim) → (B, out_dim).
    """
    if num_layers < 1:
        raise ValueError(f"num_layers: {num_layers} — must be >= 1")
    layers: list[nn.Module] = []
    d = in_dim
    for _ in range(num_layers - 1):
        if batch_norm:
            layers += [nn.Linear(d, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim), nn.ReLU()]
        else:
            layers += [nn.Linear(d, hidden_dim), nn.ReLU()]
        d = hidden_dim
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


class ProjectionHead(nn.Module):
    """MLP projector ``num_layers`` deep (Linear-BN-ReLU blocks, then Linear), L2-normalised output.

    The layers are :func:`projection_mlp` with ``batch_norm=True``.

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
        self.net = projection_mlp(in_dim, hidden_dim, out_dim, num_layers, batch_norm=True)
        self.normalize = normalize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(x)
        return F.normalize(z, dim=1) if self.normalize else z


def classifier_head(in_dim: int, num_classes: int) -> nn.Linear:
    """A linear classifier (B, in_dim) → (B, num_classes)."""
    return nn.Linear(in_dim, num_classes)
