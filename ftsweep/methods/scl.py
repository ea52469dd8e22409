"""CE + supervised contrastive loss (Gunel et al., ICLR 2021), on L2-normalised features."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch.nn.functional as F
from torch import nn

from ftsweep.backbones import ProjectionHead
from ftsweep.config import TrainConfig, check
from ftsweep.engine import StepOutput
from ftsweep.losses import supcon_loss
from ftsweep.methods.base import FineTuner

__all__ = ["SCLConfig", "SclMethod"]


@dataclass(frozen=True)
class SCLConfig(TrainConfig):
    """Gunel et al.'s objective: loss = (1 − λ)·CE + λ·SupCon(features, τ).

    Attributes:
        lambda_: weight λ ∈ [0, 1] of the supervised contrastive term.
        temperature: τ > 0.
        projector: contrast a projection head's output (dim ``proj_dim``) instead of the
            L2-normalised backbone features Gunel et al. use.
        supcon_variant: ``paper`` (Khosla et al.) or ``official`` (COIN's code).
    """

    method: ClassVar[str] = "scl"

    lambda_: float = 0.5
    temperature: float = 0.1
    projector: bool = False
    proj_dim: int = 128
    supcon_variant: str = "paper"

    def validate(self) -> None:
        super().validate()
        check(self.lambda_, "lambda_", ge=0, le=1)
        check(self.temperature, "temperature", gt=0)
        check(self.proj_dim, "proj_dim", ge=1)
        check(self.supcon_variant, "supcon_variant", choices=("paper", "official"))


class SclMethod(FineTuner):
    """CE + λ·SupCon fine-tuning."""

    config_cls = SCLConfig
    cfg: SCLConfig

    def build_heads(self, num_features: int) -> dict[str, nn.Module]:
        heads = super().build_heads(num_features)
        if self.cfg.projector:
            heads["projector"] = ProjectionHead(num_features, num_features, self.cfg.proj_dim)
        return heads

    @classmethod
    def loss_terms(cls, cfg: Any) -> tuple[str, ...]:
        return ("ce", "supcon")

    def training_step(self, batch: Any) -> StepOutput:
        x, y, _ = batch
        x, y = x.to(self.device), y.to(self.device)
        feats = self.model["backbone"](x)
        logits = self.model["classifier"](feats)
        z = self.model["projector"](feats) if self.cfg.projector else F.normalize(feats, dim=1)
        ce = F.cross_entropy(logits, y)
        con = supcon_loss(z, y, self.cfg.temperature, variant=self.cfg.supcon_variant)
        lam = self.cfg.lambda_
        return (1 - lam) * ce + lam * con, {"ce": ce, "supcon": con}
