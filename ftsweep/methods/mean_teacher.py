"""Mean Teacher (Tarvainen & Valpola, 2017) as a stage-2 learner (the paper's Table 8)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from ftsweep.config import check
from ftsweep.engine import StepOutput, sigmoid_rampup
from ftsweep.losses import mean_teacher_loss
from ftsweep.methods.stage2 import SemiConfig, SemiMethod

__all__ = ["MeanTeacherConfig", "MeanTeacherMethod"]


@dataclass(frozen=True)
class MeanTeacherConfig(SemiConfig):
    """Mean Teacher: ``CE(labeled) + w(k) · J(student(x₁), teacher(x₂))`` on unlabeled images.

    ``J`` is the squared L2 distance between class-probability vectors (``mt_variant: paper``
    sums over classes; ``official`` divides by the number of classes as the authors' PyTorch
    code does). ``w(k) = λ_u · exp(−5(1 − k/R)²)`` ramps up over ``R = rampup_epochs ·
    iters_per_epoch`` optimiser steps. The teacher is the EMA of the student with the public
    code's decay ramp ``min(ema_decay, 1 − 1/(n + 1))``; x₁ and x₂ are two independent weak
    views. λ_u = 10 with ``paper`` equals the public code's weight 100 with ``official`` on
    10 classes; rampup 5 epochs is the ramp of the public code's CIFAR-10 experiment (its epoch
    is shorter in steps: docs/deviations.md), decay 0.999 its command-line default.

    Attributes:
        rampup_epochs: length of the sigmoid ramp-up in epochs (0 disables it).
        mt_variant: ``paper`` or ``official`` (see ftsweep.losses.mean_teacher_loss).
    """

    method: ClassVar[str] = "mean_teacher"

    lambda_u: float = 10.0
    rampup_epochs: float = 5.0
    mt_variant: str = "paper"

    def validate(self) -> None:
        super().validate()
        check(self.rampup_epochs, "rampup_epochs", ge=0)
        check(self.mt_variant, "mt_variant", choices=("paper", "official"))


class MeanTeacherMethod(SemiMethod):
    """Labeled CE + consistency with an EMA teacher on two weak views of unlabeled images."""

    config_cls = MeanTeacherConfig
    cfg: MeanTeacherConfig
    unlabeled_views = ("weak", "weak")
    ema_warmup = True

    def consistency_weight(self) -> float:
        """``w(k)`` at the current optimiser step ``k`` (the scheduler's step count)."""
        spe = self.optimizer_steps_per_epoch()
        length = int(round(self.cfg.rampup_epochs * spe))
        return self.cfg.lambda_u * sigmoid_rampup(self.scheduler.last_epoch, length)

    @classmethod
    def loss_terms(cls, cfg: Any) -> tuple[str, ...]:
        return ("ce", "unsup", "weight_u")

    def training_step(self, batch: Any) -> StepOutput:
        (x_l, y_l, _), ((x_1, x_2), _, _) = batch
        n_l, n_u = len(x_l), len(x_1)
        logits = self.logits(torch.cat([x_l, x_1]).to(self.device))
        logits_l, student_u = logits.split([n_l, n_u])
        with torch.no_grad():
            teacher = self.ema.module
            teacher_u = teacher["classifier"](teacher["backbone"](x_2.to(self.device)))
        ce = F.cross_entropy(logits_l, y_l.to(self.device))
        cons = mean_teacher_loss(student_u, teacher_u, variant=self.cfg.mt_variant)
        w = self.consistency_weight()
        return ce + w * cons, {"ce": ce, "unsup": cons, "weight_u": w}
