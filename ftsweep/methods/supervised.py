"""Supervised stage 2 (the "-" SSL rows of the target pretraining paper's Tables 1, 2 and 8)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch.nn.functional as F

from ftsweep.engine import StepOutput
from ftsweep.methods.stage2 import Stage2Config, Stage2Method

__all__ = ["SupervisedConfig", "SupervisedMethod"]


@dataclass(frozen=True)
class SupervisedConfig(Stage2Config):
    """Labeled cross-entropy only, with the same steps, views, schedule and EMA as FixMatch.

    Without a label budget every training image (minus validation) is labeled (Fig. 5 "all").
    """

    method: ClassVar[str] = "supervised"


class SupervisedMethod(Stage2Method):
    """Fine-tunes on the labeled images only; the rest of the training set is never read."""

    config_cls = SupervisedConfig
    cfg: SupervisedConfig

    def training_step(self, batch: Any) -> StepOutput:
        (x, y, _), _ = batch
        logits = self.logits(x.to(self.device))
        return F.cross_entropy(logits, y.to(self.device)), {}
