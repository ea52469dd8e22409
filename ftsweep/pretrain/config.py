"""The config of stage-1 target pretraining (target pretraining paper, Sec. 4.2).

Reference: ``/work/shared/papers/target_pretraining.md``. The defaults are the paper's BYOL
recipe unless said otherwise; :mod:`ftsweep.pretrain.trainer` trains it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ftsweep.config import ConfigError, check
from ftsweep.config.base import DataConfig, LoopConfig

__all__ = ["TargetPretrainConfig"]

#: per-objective projector defaults used when ``proj_dim`` / ``proj_hidden`` are left unset
_PROJ_DEFAULTS = {"byol": (256, 4096), "moco_v2": (128, 2048)}


@dataclass(frozen=True)
class TargetPretrainConfig(LoopConfig, DataConfig):
    """Hyperparameters of stage-1 target pretraining (paper Sec. 4.2, "Contrastive Target
    Pretraining"; defaults are the paper's BYOL recipe unless said otherwise).

    The data and loop fields and their checks are :class:`~ftsweep.config.base.DataConfig`'s and
    :class:`~ftsweep.config.base.LoopConfig`'s; here they mean:

    Attributes:
        dataset: the pool is its train part minus the validation split (``val_fraction``, same
            ``seed`` as stage 2).
        pretrained: Φ_pre, a checkpoint path, or ``none`` (random init, the default here).
            ``auto`` must be resolved to a path by the runner before training.
        epochs: stage-1 epochs (paper: 300).
        batch_size: images per step (paper: 256; at least 2); the last incomplete batch is
            dropped.
        optimizer: ``lars`` (paper) or ``sgd``.
        lr: base learning rate at batch 256 (paper: 0.3); the rate used is lr · batch_size/256.
        momentum: optimiser momentum (paper: 0.9).
        weight_decay: on weights other than biases and normalisation layers (BYOL: 1.5e-6).
        warmup_epochs: linear warm-up before the cosine decay (paper: not stated; 0).
        seed: drives the split, initialisation, data order and augmentation.
        labels_per_class / num_labels / val_fraction: stage 2's split options; only the
            validation split matters here (the pool is labeled ∪ unlabeled).
        max_train_batches: cap on steps per epoch (smoke runs).
        image_size: crop side of the views (None: the dataset's own; inherited from stage 2).
        num_workers: DataLoader workers of the per-sample view pipelines (``auto``: the
            trial's CPUs minus one, as for the fine-tuners; persistent across epochs). Not used
            for in-memory data, whose views are batched in the training process.
        cache_dir: where shared artefacts live (set by ``ftsweep run``; unused here).

    and the stage-1 fields:

    Attributes:
        objective: ``byol`` (Eq. 2-3) or ``moco_v2`` (Table 8).
        tau_base: BYOL target momentum at step 0, rising to 1 (BYOL: 0.996).
        l2_init: λ of Eq. 3 on ‖Φ − Φ_pre‖²₂ of the backbone parameters (paper: 1e-2).
        byol_reduction: ``mean`` — each direction is ``byol_loss`` (batch mean of 2 − 2·cos,
            BYOL's code); ``sum`` — the batch *sum* of −cos (Eq. 3 literally, averaged over the
            two directions, up to an additive constant). See docs/deviations.md.
        proj_dim, proj_hidden: projector output / hidden width (None: BYOL 256/4096,
            MoCo v2 128/2048).
        pred_hidden: BYOL predictor hidden width (BYOL: 4096).
        moco_queue: number K of negative keys (MoCo: 65536).
        moco_momentum: key-encoder momentum (MoCo: 0.999).
        moco_temperature: InfoNCE τ (MoCo v2: 0.2).
        eval_every: the Trainable reports clustering accuracy every this many epochs
            (0: only at the end).
        cluster_n_init: k-means restarts of the clustering metric.

    ``precision``, ``channels_last`` and ``gpu_augment`` (the two views) are
    :class:`~ftsweep.config.base.LoopConfig`'s, as for the fine-tuners.
    """

    method: ClassVar[str] = "target_pretrain"
    optimizers: ClassVar[tuple[str, ...]] = ("lars", "sgd")
    min_batch_size: ClassVar[int] = 2

    # the paper's stage-1 recipe where it differs from the shared defaults
    pretrained: str = "none"
    epochs: int = 300
    batch_size: int = 256
    optimizer: str = "lars"
    lr: float = 0.3
    weight_decay: float = 1.5e-6

    objective: str = "byol"
    tau_base: float = 0.996
    l2_init: float = 1e-2
    byol_reduction: str = "mean"
    proj_dim: int | None = None
    proj_hidden: int | None = None
    pred_hidden: int = 4096
    moco_queue: int = 65536
    moco_momentum: float = 0.999
    moco_temperature: float = 0.2
    eval_every: int = 0
    cluster_n_init: int = 10

    def validate(self) -> None:
        super().validate()
        check(self.objective, "objective", choices=("byol", "moco_v2"))
        check(self.tau_base, "tau_base", ge=0, le=1)
        check(self.l2_init, "l2_init", ge=0)
        check(self.byol_reduction, "byol_reduction", choices=("mean", "sum"))
        check(self.proj_dim, "proj_dim", ge=1)
        check(self.proj_hidden, "proj_hidden", ge=1)
        check(self.pred_hidden, "pred_hidden", ge=1)
        check(self.moco_queue, "moco_queue", ge=1)
        check(self.moco_momentum, "moco_momentum", ge=0, le=1)
        check(self.moco_temperature, "moco_temperature", gt=0)
        check(self.eval_every, "eval_every", ge=0)
        check(self.cluster_n_init, "cluster_n_init", ge=1)
        if self.pretrained == "":
            raise ConfigError("pretrained", self.pretrained, "must be a checkpoint path, none or auto")

    @property
    def projector_dims(self) -> tuple[int, int]:
        """``(proj_dim, proj_hidden)`` with the objective's defaults filled in."""
        dim, hidden = _PROJ_DEFAULTS[self.objective]
        return (self.proj_dim or dim, self.proj_hidden or hidden)

    @property
    def scaled_lr(self) -> float:
        """The learning rate used: ``lr · batch_size / 256``."""
        return self.lr * self.batch_size / 256

    def tag(self) -> str:
        """Readable file-name prefix."""
        pre = "none" if self.pretrained == "none" else Path(self.pretrained).stem
        return f"{self.dataset}-{self.backbone.replace('/', '_')}-{self.objective}-e{self.epochs}-from-{pre}"
