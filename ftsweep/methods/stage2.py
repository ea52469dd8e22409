"""Shared machinery of the stage-2 methods of the target pretraining paper.

Stage 2 fine-tunes a backbone whose initial weights are random (``pretrained: none``), a
checkpoint (``pretrained: <path>``, the paper's "Pretrain" column) or the output of contrastive
target pretraining (``stage1: {...}``, the "Trg. Pre." column), with the labeled loss of Eq. 4
and, for the semi-supervised learners, ``λ · L_PL`` on an unlabeled stream (Eq. 4, Alg. 1).

Training follows FixMatch's public code rather than epochs over the labeled set:

- an *epoch* is ``iters_per_epoch`` optimiser steps (FixMatch evaluates every 1024 steps); each
  step draws a labeled batch of exactly ``batch_size`` B and, for the semi-supervised learners,
  ``mu · B`` unlabeled images with the class's ``unlabeled_views``. Both streams are successive
  reshufflings of their set (:meth:`Stage2Method.stream`: ``make_loader`` with ``num_samples``
  = steps · batch size), so a label budget smaller than B repeats labeled images within a batch
  — FixMatch's expanded labeled index — instead of shrinking the batch to the budget (40 labels
  still give B = 64 and μ = 7);
- the unlabeled set of the semi-supervised learners holds every training image outside
  validation, the labeled ones included (FixMatch's ``x_u_split`` returns all indices as
  unlabeled; ``unlabeled_includes_labeled: false`` leaves the labeled ones out);
- labeled, weak and strong images go through the network in **one** forward pass (one set of
  BatchNorm batch statistics for all of them), like FixMatch's code on one device (its
  ``interleave`` only matters across several devices);
- the learning rate follows FixMatch's ``lr · cos(7πk / 16K)`` when ``fixmatch_schedule`` (it
  ends at cos(7π/16) ≈ 0.2·lr); otherwise TrainConfig's cosine to 0;
- an exponential moving average of the weights (``ema_decay``) is kept after every optimiser
  step and, when ``ema_eval``, is the model that validation/test evaluate (FixMatch's EMA model,
  Mean Teacher's teacher).

Stage 1 is shared, not per trial: ``stage1`` holds overrides of
:class:`ftsweep.pretrain.TargetPretrainConfig`; the rest of that config comes from this trial's
data/backbone fields (``dataset``, ``data_root``, ``backbone``, ``pretrained``,
``checkpoint_format``, ``val_fraction``, ``device``, ``image_size``) and how it runs
(``num_workers``, ``precision``, ``channels_last``, ``gpu_augment``). The trial's ``seed`` and
label budget are deliberately *not* passed: the paper pretrains once per dataset on all of its
training images (labels unused), so every seed and every label budget of a sweep reuses one
stage-1 checkpoint, built once by :func:`ftsweep.pretrain.stage1_checkpoint`. The stage-1 seed
is ``stage1.seed`` (TargetPretrainConfig's default when absent).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ftsweep.backbones import load_backbone_weights
from ftsweep.config import ConfigError, TrainConfig, check
from ftsweep.data import DataBundle, ViewDataset
from ftsweep.engine import fixmatch_lr_factor
from ftsweep.engine.ema import ModelEMA
from ftsweep.methods.base import FineTuner, resolve_trial_config

__all__ = [
    "STAGE2_SMOKE",
    "SemiConfig",
    "SemiMethod",
    "Stage2Config",
    "Stage2Method",
    "stage1_config",
]

#: what ``--smoke`` sets for every stage-2 method: a label budget (the semi-supervised learners
#: need an unlabeled stream) and two optimiser steps per epoch
STAGE2_SMOKE = {"labels_per_class": 3, "iters_per_epoch": 2}

#: fields of a stage-2 config that seed the stage-1 config (``stage1:`` may override them,
#: except ``backbone``, which must match for the checkpoint to load)
STAGE1_INHERITED = (
    "dataset",
    "data_root",
    "backbone",
    "pretrained",
    "checkpoint_format",
    "val_fraction",
    "device",
    "image_size",
    "num_workers",
    "precision",
    "channels_last",
    "gpu_augment",
)


@dataclass(frozen=True)
class Stage2Config(TrainConfig):
    """Fields every stage-2 fine-tuning method of the target pretraining paper shares.

    Attributes:
        stage1: ``None`` (no target pretraining) or a mapping of TargetPretrainConfig overrides,
            e.g. ``{objective: byol, epochs: 300}``; the stage-1 output replaces ``pretrained``
            as this trial's initial weights (``pretrained`` initialises stage 1 instead).
        stage1_defaults: TargetPretrainConfig overrides shared by every non-null ``stage1``
            (a spec's stage-1 recipe, e.g. ``{epochs: 300, lr: 0.3}``; ``stage1`` keys win), so
            a grid over ``stage1`` can name only what it varies and ``--smoke`` can shrink the
            recipe.
        iters_per_epoch: optimiser steps per epoch (FixMatch's evaluation interval, 1024).
        ema_decay: decay of the weight average kept after every optimiser step.
        ema_eval: evaluate the averaged model (FixMatch) instead of the trained one.
        fixmatch_schedule: with ``schedule: cosine``, use FixMatch's ``cos(7πk/16K)``.
    """

    method: ClassVar[str] = "stage2"

    stage1: dict[str, Any] | None = None
    stage1_defaults: dict[str, Any] | None = None
    epochs: int = 200
    iters_per_epoch: int = 1024
    batch_size: int = 64
    lr: float = 0.03
    weight_decay: float = 5e-4
    ema_decay: float = 0.999
    ema_eval: bool = True
    fixmatch_schedule: bool = True

    def validate(self) -> None:
        super().validate()
        check(self.iters_per_epoch, "iters_per_epoch", ge=1)
        check(self.ema_decay, "ema_decay", ge=0, le=1)
        stage1_config(self)


def stage1_config(cfg: Stage2Config) -> Any:
    """The TargetPretrainConfig a stage-2 config names (``None`` without ``stage1``).

    Raises:
        ConfigError: ``stage1`` is not a mapping, names a different backbone, or one of its
            values is rejected by TargetPretrainConfig (the field is reported as ``stage1.<key>``).
    """
    if cfg.stage1_defaults is not None and not isinstance(cfg.stage1_defaults, Mapping):
        raise ConfigError(
            "stage1_defaults", cfg.stage1_defaults, "must be null or a mapping of target-pretraining settings"
        )
    if cfg.stage1 is None:
        return None
    if not isinstance(cfg.stage1, Mapping):
        raise ConfigError(
            "stage1",
            cfg.stage1,
            "must be null or a mapping of target-pretraining settings, e.g. {objective: byol}",
        )
    overrides = {**(cfg.stage1_defaults or {}), **cfg.stage1}
    if "backbone" in overrides and overrides["backbone"] != cfg.backbone:
        raise ConfigError(
            "stage1.backbone",
            overrides["backbone"],
            f"must equal the stage-2 backbone {cfg.backbone!r} (its weights initialise stage 2)",
        )
    from ftsweep.pretrain import TargetPretrainConfig

    values = {name: getattr(cfg, name) for name in STAGE1_INHERITED}
    if cfg.amp is False and cfg.precision == "auto":  # the older switch: fp32 for stage 1 too
        values["precision"] = "fp32"
    values.update(overrides)
    try:
        return TargetPretrainConfig.from_dict(values)
    except ConfigError as e:
        raise e.within("stage1") from None


@dataclass(frozen=True)
class SemiConfig(Stage2Config):
    """Fields of the semi-supervised learners (Eq. 4).

    Attributes:
        mu: unlabeled images per labeled image in a step (μ ≥ 1).
        lambda_u: weight λ of the unlabeled loss L_PL (≥ 0).
        unlabeled_includes_labeled: the unlabeled stream holds the labeled images too
            (FixMatch's code); false = only the images outside the label budget.
    """

    method: ClassVar[str] = "semi"
    #: the budget must leave unlabeled images (``ftsweep.config.checks.check_exact_split``)
    needs_unlabeled: ClassVar[bool] = True

    mu: int = 7
    lambda_u: float = 1.0
    unlabeled_includes_labeled: bool = True

    def validate(self) -> None:
        super().validate()
        check(self.mu, "mu", ge=1)
        check(self.lambda_u, "lambda_u", ge=0)
        if self.labels_per_class is None and self.num_labels is None:
            raise ConfigError(
                "labels_per_class",
                None,
                f"{self.method} needs a label budget (labels_per_class or num_labels) so that the "
                "rest of the training set forms its unlabeled stream",
            )


class Stage2Method(FineTuner):
    """Stage-2 skeleton: initial weights (incl. stage 1), step-based epochs, EMA evaluation."""

    config_cls: ClassVar[type[TrainConfig]] = Stage2Config
    cfg: Stage2Config
    train_views = "weak"
    #: Mean Teacher's decay ramp ``min(decay, 1 − 1/(n + 1))`` (see ModelEMA)
    ema_warmup: ClassVar[bool] = False

    @classmethod
    def upstream_key(cls, config: Mapping[str, Any]) -> str | None:
        """The stage-1 checkpoint's cache key (None without target pretraining)."""
        from ftsweep.pretrain import stage1_key

        stage1 = stage1_config(cls.config_cls.from_dict(resolve_trial_config(config)))
        return None if stage1 is None else f"stage1:{stage1_key(stage1)}"

    # ---- initial weights ----------------------------------------------------------------
    def stage1_checkpoint(self) -> Any:
        """Path of the shared stage-1 checkpoint (built once per distinct stage-1 config)."""
        from ftsweep.pretrain import stage1_checkpoint

        return stage1_checkpoint(stage1_config(self.cfg), self.cfg.cache_dir)

    def build_backbone(self) -> nn.Module:
        if self.cfg.stage1 is None:
            return super().build_backbone()
        from ftsweep.backbones import create_backbone

        backbone = create_backbone(self.cfg.backbone)
        load_backbone_weights(backbone, self.stage1_checkpoint(), format="ftsweep")
        return backbone

    # ---- method state -------------------------------------------------------------------
    def setup_method(self) -> None:
        self.ema = ModelEMA(self.model, self.cfg.ema_decay, warmup=self.ema_warmup)
        cfg = self.cfg
        if cfg.fixmatch_schedule and cfg.schedule == "cosine":
            spe = self.optimizer_steps_per_epoch()
            total, warm = cfg.epochs * spe, cfg.warmup_epochs * spe
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(
                self.optimizer,
                lambda k: fixmatch_lr_factor(k, total_steps=total, warmup_steps=warm),
            )

    def after_optimizer_step(self) -> None:
        self.ema.update(self.model)

    def extra_state(self) -> dict[str, Any]:
        return {"ema": self.ema.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.ema.load_state_dict(state["ema"])

    # ---- forward ------------------------------------------------------------------------
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the trained (online / student) model."""
        return self.model["classifier"](self.model["backbone"](x))

    def weak_strong_logits(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Labeled CE and the weak / strong unlabeled logits of one (labeled, (weak, strong))
        batch, all from one concatenated forward pass as in FixMatch's code (shared BatchNorm
        statistics). Returns ``(ce, logits_weak, logits_strong)``."""
        (x_l, y_l, _), ((x_w, x_s), _, _) = batch
        n_l, n_u = len(x_l), len(x_w)
        logits = self.logits(torch.cat([x_l, x_w, x_s]).to(self.device))
        logits_l, logits_w, logits_s = logits.split([n_l, n_u, n_u])
        return F.cross_entropy(logits_l, y_l.to(self.device)), logits_w, logits_s

    def eval_model(self) -> nn.Module:
        return self.ema.module if self.cfg.ema_eval else self.model

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        m = self.eval_model()
        return m["classifier"](m["backbone"](x))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.eval_model()["backbone"](x)

    # ---- batches ------------------------------------------------------------------------
    def steps_per_epoch(self) -> int:
        n = self.cfg.iters_per_epoch
        return min(n, self.cfg.max_train_batches or n)

    def unlabeled_seed(self, seed: int) -> int:
        """Seed of the unlabeled stream, far from the labeled stream's ``seed + round``."""
        return (seed * 6_364_136_223_846_793_005 + 1_442_695_040_888_963_407) % 2**63

    def train_batches(self, seed: int) -> Iterator:
        """``steps_per_epoch`` pairs ``(labeled_batch, unlabeled_batch | None)``: B labeled and
        μ·B unlabeled images per step, whatever the size of the label budget (:meth:`stream`)."""
        cfg, steps = self.cfg, self.steps_per_epoch()
        labeled = self.stream("train", self.data.labeled, cfg.batch_size, steps, seed)
        if self.unlabeled_views is None:
            yield from ((batch, None) for batch in labeled)
            return
        unlabeled = self.stream(
            "unlabeled", self.data.unlabeled, cfg.mu * cfg.batch_size, steps, self.unlabeled_seed(seed)
        )
        yield from zip(labeled, unlabeled, strict=True)

    def stream(self, key: str, dataset: Any, batch_size: int, steps: int, seed: int) -> Any:
        """``steps`` batches of exactly ``batch_size`` items of ``dataset`` drawn from successive
        random permutations of it (one after the other, each by ``seed``): every item appears
        once per permutation, so a dataset smaller than ``batch_size`` fills a batch by
        repetition, as FixMatch's code does by expanding the labeled indices to
        ``⌈B·eval_step / num_labeled⌉`` copies before shuffling. The loader ``key`` of
        :meth:`FineTuner.loader` (``make_loader`` with ``num_samples = steps · batch_size``):
        per-item seeds, the trial's ``num_workers``, persistent workers and pinned memory on
        CUDA, re-seeded with ``seed`` on each call."""
        return self.loader(
            key,
            dataset,
            batch_size=batch_size,
            shuffle=True,
            seed=seed,
            drop_last=True,
            num_samples=steps * batch_size,
        )


class SemiMethod(Stage2Method):
    """Semi-supervised stage 2: checks that an unlabeled stream exists."""

    config_cls: ClassVar[type[TrainConfig]] = SemiConfig
    cfg: SemiConfig

    def build_data(self) -> DataBundle:
        data = super().build_data()
        if not self.cfg.unlabeled_includes_labeled or data.unlabeled is None:
            return data
        u = data.unlabeled
        indices = np.concatenate([data.labeled.indices, u.indices])
        return dataclasses.replace(
            data, unlabeled=ViewDataset(u.base, indices, u.transform, hide_labels=True)
        )

    def setup_method(self) -> None:
        if self.data.unlabeled is None or len(self.data.unlabeled) == 0:
            raise ConfigError(
                "labels_per_class",
                self.cfg.labels_per_class,
                f"the label budget leaves no unlabeled images in {self.cfg.dataset} for {self.cfg.method}",
            )
        super().setup_method()
