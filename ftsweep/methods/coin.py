"""COIN: fine-tuning with Contrastive Initialization (Pan et al.; coin.md Sec. 3, Algorithm 1).

Given N epochs and the stage split ratio α, the first ``⌊αN⌋`` epochs train only the backbone f
and the projector g with the supervised contrastive loss of Eq. 1 on ``v = g(f(x))`` (the
classifier h is not used, receives no gradient and is not updated — not even by weight decay or
momentum, since an optimiser skips parameters whose gradient is None). The remaining epochs
train f, g and h with SCL's objective ``L = L_ce(h(f(x))) + λ·L_con^sup(g(f(x)))`` (Sec. 3.2,
λ = 0.1). The learning-rate schedule runs once over all N epochs (the total budget is N).

Model selection: the classifier is untrained during stage 1, so only stage-2 epochs are
eligible. Stage-1 epochs are tracked provisionally (so ``best/*`` is defined while they run;
test images are not evaluated) and forgotten at the first stage-2 epoch. ``sched/epoch`` (the
runner's ASHA time) is 0 during stage 1 and counts stage-2 epochs after it, so ASHA never
judges a COIN trial on its untrained classifier, whatever α.

Logged beyond the base metrics: ``stage`` (1 or 2, the epoch just trained), ``train/supcon``
and ``train/ce`` (stage 2), ``stage1/val/s_dbw`` (S_Dbw of validation backbone features at the
end of stage 1, repeated in every later report) and ``val/s_dbw`` (the same at the end).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import islice
from typing import Any, ClassVar

import torch.nn.functional as F
from torch import nn

from ftsweep.backbones import projection_mlp
from ftsweep.config import TrainConfig, check
from ftsweep.engine import BestTracker, StepOutput, extract_features
from ftsweep.losses import supcon_loss
from ftsweep.methods.base import FineTuner
from ftsweep.metrics import S_DBW_VARIANTS, s_dbw

__all__ = ["CoinConfig", "CoinMethod", "StageTwoTracker", "stage1_epochs"]


@dataclass(frozen=True)
class CoinConfig(TrainConfig):
    """COIN's hyperparameters (Algorithm 1); the step size η is ``lr`` of :class:`TrainConfig`.
    The training defaults are Core-tuning's (§4.2: "nearly the same as Core-Tuning"): N = 100
    epochs, batch 256, SGD with Nesterov momentum 0.9, lr 0.1 on a cosine schedule, weight
    decay 1e-4.

    Attributes:
        alpha: stage split ratio α ∈ [0, 1); stage 1 lasts ``⌊α·epochs⌋`` epochs. ``α = 0``
            has no initialization stage: ``CE + λ·SupCon`` on the same projector for all N
            epochs, the ``SCL*`` row of COIN's Table 1 (COIN's objective without the stage).
        temperature: τ > 0 of the supervised contrastive loss (paper: 0.3).
        lambda_: weight λ ≥ 0 of the contrastive term in stage 2 (paper: 0.1).
        proj_dim: output dimension of the projector g (public code: 256).
        proj_hidden: hidden width of g; None = the backbone's feature dimension (public code).
        proj_layers: Linear layers of g (2 = Linear-ReLU-Linear, as the public code; 1 = linear).
        supcon_variant: ``paper`` (Eq. 1) or ``official`` (COIN's code; docs/deviations.md).
        s_dbw_variant: S_Dbw definition logged: ``official`` (the s-dbw package COIN's code and
            tables use) or ``paper`` (Halkidi & Vazirgiannis 2001).
        weight_decay_norm_bias: decay biases and norms too (default true: COIN's public code,
            ``methods/base.py``, gives SGD every learnable parameter with weight decay).
        eval_resize: ``square`` (COIN §4.2: "nearly the same" settings as Core-tuning, whose
            App. C.2 tests on a 224 centre crop of the image resized to 256 × 256).
    """

    method: ClassVar[str] = "coin"

    epochs: int = 100
    batch_size: int = 256
    lr: float = 0.1
    weight_decay: float = 1e-4

    weight_decay_norm_bias: bool = True  # the public code decays every learnable parameter
    eval_resize: str = "square"  # Core-tuning's test view (COIN §4.2)

    alpha: float = 0.7
    temperature: float = 0.3
    lambda_: float = 0.1
    proj_dim: int = 256
    proj_hidden: int | None = None
    proj_layers: int = 2
    supcon_variant: str = "paper"
    s_dbw_variant: str = "official"

    def validate(self) -> None:
        super().validate()
        check(self.alpha, "alpha", ge=0, lt=1)
        check(self.temperature, "temperature", gt=0)
        check(self.lambda_, "lambda_", ge=0)
        check(self.proj_dim, "proj_dim", ge=1)
        check(self.proj_hidden, "proj_hidden", ge=1)
        check(self.proj_layers, "proj_layers", ge=1)
        check(self.supcon_variant, "supcon_variant", choices=("paper", "official"))
        check(self.s_dbw_variant, "s_dbw_variant", choices=S_DBW_VARIANTS)


def stage1_epochs(alpha: float, epochs: int) -> int:
    """``⌊α·N⌋``, robust to float rounding (0.29·100 is 28.999…96 in binary)."""
    return math.floor(round(alpha * epochs, 9))


@dataclass
class StageTwoTracker(BestTracker):
    """Selection restricted to epochs after ``stage1_epochs``.

    Stage-1 epochs are recorded provisionally (``best`` stays defined); the first stage-2 epoch
    discards them, so the final selection is always a stage-2 epoch.
    """

    stage1_epochs: int = 0

    def update(self, epoch: int, metrics: dict[str, float]) -> bool:
        if epoch == self.stage1_epochs + 1:
            self.best, self.epoch, self.selected = None, 0, {}
        return super().update(epoch, metrics)


class CoinMethod(FineTuner):
    """Two-stage COIN fine-tuning: SupCon only, then CE + λ·SupCon."""

    config_cls = CoinConfig
    cfg: CoinConfig

    def build_heads(self, num_features: int) -> dict[str, nn.Module]:
        heads = super().build_heads(num_features)
        # COIN's projector g (public code): no BatchNorm; the caller L2-normalises the output
        hidden = self.cfg.proj_hidden or num_features
        heads["projector"] = projection_mlp(num_features, hidden, self.cfg.proj_dim, self.cfg.proj_layers)
        return heads

    def setup_method(self) -> None:
        self.stage1_epochs = stage1_epochs(self.cfg.alpha, self.cfg.epochs)
        self.tracker = StageTwoTracker("val/acc", "max", stage1_epochs=self.stage1_epochs)
        self.stage1_s_dbw: float | None = None

    def stage(self, epoch_index: int) -> int:
        """Stage (1 or 2) of the 0-based ``epoch_index``."""
        return 1 if epoch_index < self.stage1_epochs else 2

    @classmethod
    def loss_terms(cls, cfg: Any) -> tuple[str, ...]:
        """``supcon`` in both stages; ``ce`` only when there is no stage 1 (α = 0)."""
        return ("supcon",) if stage1_epochs(cfg.alpha, cfg.epochs) else ("ce", "supcon")

    @classmethod
    def logged_metrics(cls, cfg: Any) -> frozenset[str]:
        """Beside the shared ones: ``stage``, ``train/ce`` (stage 2), ``val/s_dbw`` (last epoch)
        and, after a stage 1, ``stage1/val/s_dbw``."""
        stage1 = ("stage1/val/s_dbw",) if stage1_epochs(cfg.alpha, cfg.epochs) else ()
        return super().logged_metrics(cfg) | {"stage", "train/ce", "val/s_dbw", *stage1}

    def training_step(self, batch: Any) -> StepOutput:
        x, y, _ = batch
        x, y = x.to(self.device), y.to(self.device)
        feats = self.model["backbone"](x)
        v = F.normalize(self.model["projector"](feats), dim=1)
        con = supcon_loss(v, y, self.cfg.temperature, variant=self.cfg.supcon_variant)
        if self.stage(self.epoch) == 1:
            return con, {"supcon": con}
        ce = F.cross_entropy(self.model["classifier"](feats), y)
        return ce + self.cfg.lambda_ * con, {"ce": ce, "supcon": con}

    @classmethod
    def schedulable_at(cls, cfg: Any, epoch: int) -> int:
        """Stage-2 epochs after ``epoch`` (after any warm-up still running when stage 2 begins);
        0 in stage 1, whose classifier is untrained."""
        if cfg.select != "best_val":
            return super().schedulable_at(cfg, epoch)
        return max(0, epoch - max(stage1_epochs(cfg.alpha, cfg.epochs), cfg.warmup_epochs))

    @classmethod
    def test_passes(cls, cfg: Any) -> int:
        """Stage-1 epochs never look at the test split: the counted epochs of stage 2."""
        stage2 = cfg.epochs - stage1_epochs(cfg.alpha, cfg.epochs)
        return min(super().test_passes(cfg), stage2)

    @classmethod
    def extra_eval_passes(cls, cfg: Any) -> dict[str, int]:
        """S_Dbw's validation passes (:meth:`epoch_metrics`): at the end of a stage 1 and at the
        last epoch (its ``val/s_dbw`` is the ``feature_metrics`` one)."""
        return {"val": 1 + (stage1_epochs(cfg.alpha, cfg.epochs) > 0)}

    def selected_metrics(self) -> dict[str, float]:
        # self.epoch was already incremented: the epoch just trained is self.epoch - 1.
        if self.stage(self.epoch - 1) == 1:
            return {}  # provisional stage-1 selection: do not look at test images
        return super().selected_metrics()

    def val_s_dbw(self) -> float:
        """S_Dbw of the validation backbone features (classes as clusters)."""
        self.model.eval()
        loader = self.eval_loader("val")
        if self.cfg.max_eval_batches is not None:
            loader = islice(loader, self.cfg.max_eval_batches)
        feats, labels = extract_features(self.encode, loader, self.device)
        return float(s_dbw(feats, labels, variant=self.cfg.s_dbw_variant))

    def epoch_metrics(self, last: bool) -> dict[str, float]:
        out = {"stage": float(self.stage(self.epoch - 1))}
        if self.epoch == self.stage1_epochs:
            self.stage1_s_dbw = self.val_s_dbw()
        if self.stage1_s_dbw is not None:
            out["stage1/val/s_dbw"] = self.stage1_s_dbw
        if last:
            out["val/s_dbw"] = self.val_s_dbw()
        return out

    def extra_state(self) -> dict[str, Any]:
        return {"stage1_s_dbw": self.stage1_s_dbw}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.stage1_s_dbw = state["stage1_s_dbw"]
