"""Core-tuning: contrast-regularised fine-tuning (Zhang et al., NeurIPS 2021, §4).

Per batch, with backbone features ``z = G_e(x)``:

- mixup-hard (§4.2) generates hard positives ``B+`` and hard negatives ``B-`` (with soft labels)
  by mixing backbone features (:func:`ftsweep.losses.mixup_hard_pairs`);
- the smooth classifier (§4.4) is trained with
  ``L_ce^m = CE(G_y(z), y) + soft-CE(G_y(B-), y-)``: the linear classifier sees the *mixed
  backbone features* of ``B-``;
- the focal contrastive loss (§4.3) ``L_con^f`` runs on ``v = G_c(.)/||G_c(.)||`` of the
  contrastive set ``z ∪ B+ ∪ B-``, with positives of generated samples given by their (soft)
  labels (:func:`ftsweep.losses.soft_label_positive_mask`); the anchors are the n originals
  (``sum_{i=1}^n``), whose pair sets contain the generated pairs (the public code makes every
  row of the set an anchor: ``variant="official"``);
- loss = ``L_ce^m + η·L_con^f`` (§4.1, Algorithm 1 line 13).

Ablations of Table 2 via ``contrastive`` (``focal`` = ``L_con^f``, ``plain`` = ``L_con``) and
``mixup`` (``none``, ``manifold``, ``hard``); ``eta = 0`` drops the contrastive term (and the
projection head). ``variant="official"`` reproduces the public code (``Core-tuning.py``):
``L_ce^m`` is one soft-CE mean over the whole set ``[z.detach(), B-, B+]`` and the losses and
mixup use their ``official`` forms (see docs/deviations.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ftsweep.backbones import projection_mlp
from ftsweep.config import ConfigError, TrainConfig, check
from ftsweep.engine import StepOutput, epoch_seed
from ftsweep.losses import (
    contrastive_set,
    focal_supcon_loss,
    manifold_mixup,
    mixup_hard_pairs,
    soft_cross_entropy,
    soft_label_positive_mask,
    supcon_loss,
)
from ftsweep.methods.base import FineTuner

__all__ = ["OFFICIAL_TEMPERATURE", "CoreTuningConfig", "CoreTuningMethod"]

#: the τ the public code's ``focal_SupConLoss`` hard-codes (``temperature=0.07``)
OFFICIAL_TEMPERATURE = 0.07


@dataclass(frozen=True)
class CoreTuningConfig(TrainConfig):
    """Core-tuning hyperparameters (defaults: §5.1 and App. C.2: 100 epochs, batch 256, SGD with
    Nesterov momentum 0.9, lr 0.1 on a cosine schedule, weight decay 1e-4; ImageNet-20's step
    schedule is its spec's).

    Attributes:
        eta: weight η ≥ 0 of the contrastive term (tuned in {0.1, 1, 10}; 0 = no contrastive
            term, Table 2 rows 1 and 3).
        mixup_alpha: α > 0 of Beta(α, α) for every mixup λ (tuned in {0.1, 1, 10}).
        lambda_p: clip λ ≥ λ_p of the hard positives, in [0, 1] (0.8).
        lambda_n: clip λ ≥ λ_n of the hard negatives, in [0, 1] (0.8).
        temperature: τ > 0 of the contrastive loss (0.07).
        proj_dim: output dimension of the projection head G_c (256).
        proj_layers: Linear layers of G_c (2 = Linear-ReLU-Linear; hidden width = backbone
            feature dimension, as in the public code).
        variant: ``paper`` or ``official`` (the public code; needs ``contrastive=focal`` and
            ``mixup=hard``, the only path that code has).
        contrastive: ``focal`` (``L_con^f``, §4.3) or ``plain`` (``L_con``, Eq. 1).
        weight_decay_norm_bias: decay biases and norms too (default true: the public code
            passes ``model.parameters()`` to SGD with weight decay).
        eval_resize: ``square`` (App. C.2: "At the test time, we resize images to 256×256 and
            then take a 224×224 center crop"; the public code covers CIFAR only).
        mixup: ``hard`` (mixup-hard, §4.2), ``manifold`` (one Beta(α, α) λ per batch, random
            partner; the mixed features replace ``B-`` in ``L_ce^m`` and in the contrastive
            set) or ``none`` (no generated samples).
    """

    method: ClassVar[str] = "core_tuning"

    epochs: int = 100
    batch_size: int = 256
    lr: float = 0.1
    weight_decay: float = 1e-4

    weight_decay_norm_bias: bool = True  # the public code decays every parameter
    eval_resize: str = "square"  # App. C.2's test view

    eta: float = 1.0
    mixup_alpha: float = 1.0
    lambda_p: float = 0.8
    lambda_n: float = 0.8
    temperature: float = 0.07
    proj_dim: int = 256
    proj_layers: int = 2
    variant: str = "paper"
    contrastive: str = "focal"
    mixup: str = "hard"

    def validate(self) -> None:
        super().validate()
        check(self.eta, "eta", ge=0)
        check(self.mixup_alpha, "mixup_alpha", gt=0)
        check(self.lambda_p, "lambda_p", ge=0, le=1)
        check(self.lambda_n, "lambda_n", ge=0, le=1)
        check(self.temperature, "temperature", gt=0)
        check(self.proj_dim, "proj_dim", ge=1)
        check(self.proj_layers, "proj_layers", ge=1)
        check(self.variant, "variant", choices=("paper", "official"))
        check(self.contrastive, "contrastive", choices=("focal", "plain"))
        check(self.mixup, "mixup", choices=("none", "manifold", "hard"))
        if self.variant == "official":
            for name, value, needed in (
                ("contrastive", self.contrastive, "focal"),
                ("mixup", self.mixup, "hard"),
            ):
                if value != needed:
                    raise ConfigError(
                        name,
                        value,
                        f"must be {needed} with variant=official (Core-tuning's public code "
                        f"implements only L_con^f with mixup-hard); use variant=paper for ablations",
                    )
            if self.temperature != OFFICIAL_TEMPERATURE:  # it would not be the code's loss
                raise ConfigError(
                    "temperature",
                    self.temperature,
                    f"must be {OFFICIAL_TEMPERATURE} with variant=official (the public code's "
                    "focal_SupConLoss fixes τ and its base temperature at 0.07); use variant=paper "
                    "to set τ",
                )


class CoreTuningMethod(FineTuner):
    """``L_ce^m + η·L_con^f`` with mixup-hard pairs (Algorithm 1), plus Table 2's ablations."""

    config_cls = CoreTuningConfig
    cfg: CoreTuningConfig

    def build_heads(self, num_features: int) -> dict[str, nn.Module]:
        heads = super().build_heads(num_features)
        if self.cfg.eta > 0:
            # G_c: hidden width = the backbone's feature dimension, no BatchNorm (public code)
            heads["projector"] = projection_mlp(
                num_features, num_features, self.cfg.proj_dim, self.cfg.proj_layers
            )
        return heads

    def setup_method(self) -> None:
        self.generator = self.epoch_generator()

    def epoch_generator(self) -> torch.Generator:
        """The mixup generator of the current epoch, seeded by ``epoch_seed(seed, epoch)``."""
        return torch.Generator().manual_seed(epoch_seed(self.cfg.seed, self.epoch))

    def train_epoch(self) -> dict[str, float]:
        self.generator = self.epoch_generator()
        return super().train_epoch()

    def project(self, features: Tensor) -> Tensor:
        """Contrastive features ``v = G_c(z) / ||G_c(z)||``, shape (B, proj_dim)."""
        return F.normalize(self.model["projector"](features), dim=1)

    def contrastive_loss(
        self, features: Tensor, labels: Tensor | None, positive_mask: Tensor | None, num_anchors: int
    ) -> Tensor:
        """``L_con^f`` (focal) or ``L_con`` (plain) of the projected ``features``; positives from
        ``labels`` or, for a set with mixed samples, from ``positive_mask``.

        ``variant="paper"``: the anchors are the ``num_anchors`` original samples (the first
        rows; §4.3 sums over ``i = 1..n``), their pair sets hold the whole set. ``official``:
        every row of the set is an anchor, as in the public code."""
        v = self.project(features)
        cfg = self.cfg
        loss_fn = focal_supcon_loss if cfg.contrastive == "focal" else supcon_loss
        anchors = num_anchors if cfg.variant == "paper" else None
        return loss_fn(
            v, labels, cfg.temperature, variant=cfg.variant, positive_mask=positive_mask, num_anchors=anchors
        )

    @classmethod
    def loss_terms(cls, cfg: Any) -> tuple[str, ...]:
        return ("ce", "ce_mixed", "generated", "con")

    def training_step(self, batch: Any) -> StepOutput:
        x, labels, _ = batch
        x, y = x.to(self.device), labels.to(self.device)
        cfg = self.cfg
        num_classes = self.data.num_classes
        classifier = self.model["classifier"]
        z = self.model["backbone"](x)

        n = z.shape[0]
        if cfg.mixup == "hard":
            pairs = mixup_hard_pairs(
                z,
                labels,  # the loader's (host) labels: the pair bookkeeping needs no device sync
                num_classes,
                cfg.mixup_alpha,
                cfg.lambda_p,
                cfg.lambda_n,
                generator=self.generator,
                variant=cfg.variant,
            )
            set_z, set_q = contrastive_set(z, y, pairs, num_classes, variant=cfg.variant)
            if cfg.variant == "official":  # one soft-CE mean over [z.detach(), B-, B+]
                logits = classifier(set_z)
                ce_m = soft_cross_entropy(logits, set_q)
                ce = F.cross_entropy(logits[:n].detach(), y)
                ce_mixed = soft_cross_entropy(logits[n:].detach(), set_q[n:])
            else:  # §4.4: CE on the originals + soft CE on B-
                logits = classifier(torch.cat([z, pairs.neg_features], dim=0))
                ce = F.cross_entropy(logits[:n], y)
                ce_mixed = soft_cross_entropy(logits[n:], pairs.neg_soft_labels)
                ce_m = ce + ce_mixed
        elif cfg.mixup == "manifold":
            onehot = F.one_hot(y, num_classes).to(z.dtype)
            mixed = manifold_mixup(z, onehot, cfg.mixup_alpha, generator=self.generator)
            set_z = torch.cat([z, mixed.features], dim=0)
            set_q = torch.cat([onehot, mixed.soft_labels], dim=0)
            logits = classifier(set_z)
            ce = F.cross_entropy(logits[:n], y)
            ce_mixed = soft_cross_entropy(logits[n:], mixed.soft_labels)
            ce_m = ce + ce_mixed
        else:
            ce = F.cross_entropy(classifier(z), y)
            ce_mixed = torch.zeros_like(ce)
            ce_m = ce
            set_z, set_q = z, None

        logs: dict[str, Tensor] = {"ce": ce, "ce_mixed": ce_mixed}
        logs["generated"] = torch.tensor(float(set_z.shape[0] - n))
        if cfg.eta == 0:
            logs["con"] = torch.zeros_like(ce)
            return ce_m, logs
        if set_q is None:  # originals only: positives share the label
            con = self.contrastive_loss(set_z, y, None, n)
        else:
            con = self.contrastive_loss(set_z, None, soft_label_positive_mask(set_q, variant=cfg.variant), n)
        logs["con"] = con
        return ce_m + cfg.eta * con, logs
