"""UDA (Xie et al., 2020) as a stage-2 learner (the paper's Table 8)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ftsweep.config import check
from ftsweep.engine import StepOutput
from ftsweep.losses import uda_loss
from ftsweep.methods.stage2 import SemiConfig, SemiMethod

__all__ = ["UDAConfig", "UDAMethod"]


@dataclass(frozen=True)
class UDAConfig(SemiConfig):
    """UDA: ``CE(labeled) + λ_u · 1/(μB) Σ 1[max p ≥ β] · KL(sharpen(p, T) ‖ q_strong)``.

    ``p = softmax(logits_weak)`` without gradient; the target is ``softmax(logits_weak / T)``.
    Defaults follow TorchSSL/USB's UDA (β = 0.8, T = 0.4, λ_u = 1, μ = 7); training-signal
    annealing is not implemented (docs/deviations.md).

    Attributes:
        threshold: confidence mask β in [0, 1] (0 disables masking).
        temperature: sharpening temperature T > 0 (1 disables sharpening).
    """

    method: ClassVar[str] = "uda"

    threshold: float = 0.8
    temperature: float = 0.4

    def validate(self) -> None:
        super().validate()
        check(self.threshold, "threshold", ge=0, le=1)
        check(self.temperature, "temperature", gt=0)


class UDAMethod(SemiMethod):
    """Labeled CE + masked, sharpened consistency between weak and strong (RandAugment) views."""

    config_cls = UDAConfig
    cfg: UDAConfig
    unlabeled_views = ("weak", "strong")

    @classmethod
    def loss_terms(cls, cfg: Any) -> tuple[str, ...]:
        return ("ce", "unsup", "mask")

    def training_step(self, batch: Any) -> StepOutput:
        ce, logits_w, logits_s = self.weak_strong_logits(batch)
        unsup, mask = uda_loss(
            logits_w,
            logits_s,
            threshold=self.cfg.threshold,
            temperature=self.cfg.temperature,
            return_mask=True,
        )
        return ce + self.cfg.lambda_u * unsup, {"ce": ce, "unsup": unsup, "mask": mask.mean()}
