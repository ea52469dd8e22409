"""CE-tuning: fine-tune backbone + linear classifier with cross-entropy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ftsweep.config import TrainConfig
from ftsweep.methods.base import FineTuner

__all__ = ["CEConfig", "CEMethod"]


@dataclass(frozen=True)
class CEConfig(TrainConfig):
    """CE-tuning has no hyperparameters beyond :class:`TrainConfig`."""

    method: ClassVar[str] = "ce"


class CEMethod(FineTuner):
    """Cross-entropy fine-tuning (the baseline row of every paper's table)."""

    config_cls = CEConfig
