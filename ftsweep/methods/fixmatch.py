"""FixMatch (Sohn et al., 2020) as the stage-2 learner of the target pretraining paper (Eq. 4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ftsweep.config import check
from ftsweep.engine import StepOutput
from ftsweep.losses import fixmatch_loss
from ftsweep.methods.stage2 import SemiConfig, SemiMethod

__all__ = ["FixMatchConfig", "FixMatchMethod"]


@dataclass(frozen=True)
class FixMatchConfig(SemiConfig):
    """FixMatch: ``CE(labeled) + λ_u · 1/(μB) Σ 1[max q ≥ τ] · CE(strong, argmax q)``.

    ``q = softmax(logits_weak / temperature)`` without gradient. Defaults are FixMatch's CIFAR
    settings the paper keeps (Sec. 4.2): τ = 0.95, λ_u = 1, μ = 7, B = 64, SGD + Nesterov,
    lr 0.03 (the paper's text says 0.1; the sweep specs try both), EMA 0.999 for evaluation.

    Attributes:
        threshold: confidence threshold τ in [0, 1].
        temperature: pseudo-label softmax temperature (1 in FixMatch).
    """

    method: ClassVar[str] = "fixmatch"

    threshold: float = 0.95
    temperature: float = 1.0

    def validate(self) -> None:
        super().validate()
        check(self.threshold, "threshold", ge=0, le=1)
        check(self.temperature, "temperature", gt=0)


class FixMatchMethod(SemiMethod):
    """Labeled CE + confidence-masked pseudo-labels from weak views applied to strong views."""

    config_cls = FixMatchConfig
    cfg: FixMatchConfig
    unlabeled_views = ("weak", "strong")

    @classmethod
    def loss_terms(cls, cfg: Any) -> tuple[str, ...]:
        return ("ce", "unsup", "mask")

    def training_step(self, batch: Any) -> StepOutput:
        ce, logits_w, logits_s = self.weak_strong_logits(batch)
        unsup, mask = fixmatch_loss(
            logits_w, logits_s, self.cfg.threshold, temperature=self.cfg.temperature, return_mask=True
        )
        return ce + self.cfg.lambda_u * unsup, {"ce": ce, "unsup": unsup, "mask": mask.mean()}
