"""The MoCo v2 queue of negative keys (target pretraining paper, Table 8; MoCo's code)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["MoCoQueue"]


class MoCoQueue:
    """FIFO queue of ``size`` L2-normalised keys stored as rows (K, D), overwritten oldest-first.

    Starts as random unit vectors (MoCo's code) drawn from ``generator``.
    """

    def __init__(self, size: int, dim: int, *, generator: torch.Generator | None = None) -> None:
        self.keys = nn.functional.normalize(torch.randn(size, dim, generator=generator), dim=1)
        self.ptr = 0

    def to(self, device: torch.device) -> MoCoQueue:
        self.keys = self.keys.to(device)
        return self

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write ``keys`` (B, D) over the oldest rows, wrapping around the end."""
        size = len(self.keys)
        keys = keys.detach()[-size:]
        idx = (self.ptr + torch.arange(len(keys), device=self.keys.device)) % size
        self.keys[idx] = keys.to(self.keys)
        self.ptr = int((self.ptr + len(keys)) % size)

    def state_dict(self) -> dict[str, Any]:
        return {"keys": self.keys.clone(), "ptr": self.ptr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.keys.copy_(state["keys"])
        self.ptr = int(state["ptr"])
