"""Contrastive target pretraining (stage 1 of the target pretraining paper): BYOL or MoCo v2.

Reference: ``/work/shared/papers/target_pretraining.md``. Starting from pre-trained weights
Φ_pre, the backbone is trained on the target pool D_L ∪ D_U (labels unused) with

- ``byol`` (Eq. 2-3): an online network (backbone Φ + projector Ψ + predictor q) regresses the
  projection of the other view computed by a target network, the exponential moving average of
  the online backbone + projector with momentum rising from ``tau_base`` to 1 on BYOL's cosine
  schedule; the loss is symmetrised over the two views (BYOL's public code);
- ``moco_v2`` (Table 8): a momentum key encoder (fixed momentum ``moco_momentum``), a queue of
  ``moco_queue`` negative keys and InfoNCE at ``moco_temperature``;

plus ``l2_init`` · ‖Φ − Φ_pre‖²₂ on the backbone parameters (Eq. 3; 0 disables it). The optimiser
is timm's LARS by default with biases and normalisation weights excluded from weight decay and
from the LARS trust-ratio adaptation, as BYOL does. The learning rate is ``lr`` · batch_size /
256 (BYOL's linear scaling rule); the paper's stage-1 recipe, "base learning rate 0.3" at batch
256, is the BYOL ImageNet rate (0.2 · 4096 / 256 = 3.2) reduced ten times.

The output is the backbone's state dict with ``backbone.`` keys (``format="ftsweep"``).
:func:`stage1_checkpoint` stores it once per distinct config in a build-once cache.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ftsweep.backbones import ProjectionHead, create_backbone, load_backbone_weights
from ftsweep.cache import CachedBuildError, build_once
from ftsweep.config import BaseConfig, ConfigError, check
from ftsweep.data import (
    DATASETS,
    TensorImageDataset,
    ViewDataset,
    build_view,
    build_views,
    load_dataset_cached,
    make_splits,
    resolve_info,
)
from ftsweep.data.batch_views import batch_simclr_view
from ftsweep.data.registry import DatasetInfo
from ftsweep.engine import (
    build_optimizer,
    build_scheduler,
    epoch_seed,
    extract_features,
    make_loader,
    param_groups,
    resolve_device,
    seed_everything,
    train_epoch,
)
from ftsweep.engine.ema import byol_momentum, ema_update
from ftsweep.losses import byol_loss, l2_to_init, moco_infonce_loss
from ftsweep.metrics import kmeans_clustering_accuracy

__all__ = [
    "CachedBuildError",
    "MoCoQueue",
    "TargetPretrainConfig",
    "TargetPretrainer",
    "batch_byol_view",
    "clustering_metrics",
    "pretrain_target",
    "stage1_checkpoint",
    "stage1_key",
    "target_pool",
]

#: per-objective projector defaults used when ``proj_dim`` / ``proj_hidden`` are left unset
_PROJ_DEFAULTS = {"byol": (256, 4096), "moco_v2": (128, 2048)}
#: fields that do not change the stage-1 weights, left out of the cache key. The pool
#: (train minus validation) does not depend on the label budget, so the budget is left out too
#: and every label budget of a dataset shares one stage-1 checkpoint, as in the paper.
_KEY_EXCLUDE = (
    "data_root",
    "device",
    "eval_every",
    "cluster_n_init",
    "cache_dir",
    "num_workers",
    "labels_per_class",
    "num_labels",
)
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")
#: bump when a code change alters what a config trains, so old cache entries are not reused
_KEY_VERSION = 1


@dataclass(frozen=True)
class TargetPretrainConfig(BaseConfig):
    """Hyperparameters of stage-1 target pretraining (paper Sec. 4.2, "Contrastive Target
    Pretraining"; defaults are the paper's BYOL recipe unless said otherwise).

    Attributes:
        objective: ``byol`` (Eq. 2-3) or ``moco_v2`` (Table 8).
        dataset: a key of ``ftsweep.data.DATASETS``; the pool is its train part minus the
            validation split (``val_fraction``, same ``seed`` as stage 2).
        data_root: where real datasets live.
        backbone: ``small_cnn``, ``torchvision.resnet50`` or a timm model name.
        pretrained: Φ_pre, a checkpoint path, or ``none`` (random init). ``auto`` must be
            resolved to a path by the runner before training.
        checkpoint_format: key-remapping rule of ``pretrained`` (see ftsweep.backbones).
        epochs: stage-1 epochs (paper: 300).
        batch_size: images per step (paper: 256); the last incomplete batch is dropped.
        optimizer: ``lars`` (paper) or ``sgd``.
        lr: base learning rate at batch 256 (paper: 0.3); the rate used is lr · batch_size/256.
        momentum: optimiser momentum (paper: 0.9).
        weight_decay: on weights other than biases and normalisation layers (BYOL: 1.5e-6).
        warmup_epochs: linear warm-up before the cosine decay (paper: not stated; 0).
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
        seed: drives the split, initialisation, data order and augmentation.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        labels_per_class / num_labels / val_fraction: stage 2's split options; only the
            validation split matters here (the pool is labeled ∪ unlabeled).
        max_train_batches: cap on steps per epoch (smoke runs).
        image_size: crop side of the views (None: the dataset's own; inherited from stage 2).
        num_workers: DataLoader workers of the per-sample view pipelines (not used for
            in-memory data, whose views are batched).
        eval_every: the Trainable reports clustering accuracy every this many epochs
            (0: only at the end).
        cluster_n_init: k-means restarts of the clustering metric.
        cache_dir: where shared artefacts live (set by ``ftsweep run``; unused here).
    """

    method: ClassVar[str] = "target_pretrain"

    objective: str = "byol"
    dataset: str = "digits"
    data_root: str = "data"
    backbone: str = "small_cnn"
    pretrained: str = "none"
    checkpoint_format: str = "auto"
    epochs: int = 300
    batch_size: int = 256
    optimizer: str = "lars"
    lr: float = 0.3
    momentum: float = 0.9
    weight_decay: float = 1.5e-6
    warmup_epochs: int = 0
    tau_base: float = 0.996
    l2_init: float = 1e-2
    byol_reduction: str = "mean"
    proj_dim: int | None = None
    proj_hidden: int | None = None
    pred_hidden: int = 4096
    moco_queue: int = 65536
    moco_momentum: float = 0.999
    moco_temperature: float = 0.2
    seed: int = 0
    device: str = "auto"
    labels_per_class: int | None = None
    num_labels: int | None = None
    val_fraction: float = 0.1
    max_train_batches: int | None = None
    image_size: int | None = None
    num_workers: int = 0
    eval_every: int = 0
    cluster_n_init: int = 10
    cache_dir: str = "results/cache"

    def validate(self) -> None:
        check(self.objective, "objective", choices=("byol", "moco_v2"))
        check(self.dataset, "dataset", choices=sorted(DATASETS))
        check(self.epochs, "epochs", ge=1)
        check(self.image_size, "image_size", ge=8)
        check(self.batch_size, "batch_size", ge=2)
        check(self.optimizer, "optimizer", choices=("lars", "sgd"))
        check(self.lr, "lr", gt=0)
        check(self.momentum, "momentum", ge=0, lt=1)
        check(self.weight_decay, "weight_decay", ge=0)
        check(self.warmup_epochs, "warmup_epochs", ge=0)
        if self.warmup_epochs and self.warmup_epochs >= self.epochs:
            raise ConfigError("warmup_epochs", self.warmup_epochs, f"must be < epochs ({self.epochs})")
        check(self.tau_base, "tau_base", ge=0, le=1)
        check(self.l2_init, "l2_init", ge=0)
        check(self.byol_reduction, "byol_reduction", choices=("mean", "sum"))
        check(self.proj_dim, "proj_dim", ge=1)
        check(self.proj_hidden, "proj_hidden", ge=1)
        check(self.pred_hidden, "pred_hidden", ge=1)
        check(self.moco_queue, "moco_queue", ge=1)
        check(self.moco_momentum, "moco_momentum", ge=0, le=1)
        check(self.moco_temperature, "moco_temperature", gt=0)
        if not _DEVICE.match(self.device):
            raise ConfigError("device", self.device, "must be auto, cpu, cuda, cuda:N or mps")
        check(self.labels_per_class, "labels_per_class", ge=1)
        check(self.num_labels, "num_labels", ge=1)
        if self.labels_per_class is not None and self.num_labels is not None:
            raise ConfigError("num_labels", self.num_labels, "give labels_per_class or num_labels, not both")
        check(self.val_fraction, "val_fraction", gt=0, lt=1)
        check(self.max_train_batches, "max_train_batches", ge=1)
        check(self.num_workers, "num_workers", ge=0)
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


# ---- data ---------------------------------------------------------------------------------------
def target_pool(cfg: TargetPretrainConfig) -> np.ndarray:
    """Sorted indices of the stage-1 pool in the train part: labeled ∪ unlabeled = train − val."""
    loaded = load_dataset_cached(cfg.dataset, cfg.data_root, False)
    splits = make_splits(
        loaded.train_targets,
        seed=cfg.seed,
        val_fraction=cfg.val_fraction,
        labels_per_class=cfg.labels_per_class,
        num_labels=cfg.num_labels,
    )
    return np.sort(np.concatenate([splits.labeled, splits.unlabeled]))


def batch_byol_view(
    images: torch.Tensor,
    info: DatasetInfo,
    *,
    solarize_p: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Batched BYOL view of in-memory uint8 images: :func:`batch_simclr_view` (random-resized
    crop, flip when allowed, brightness/contrast jitter with p = 0.8) then solarisation
    (x → 1 − x for x ≥ 0.5) with probability ``solarize_p`` per image (BYOL: 0 for the first
    view, 0.2 for the second). Blur is skipped (BYOL blurs only large images here too, see the
    ``byol1``/``byol2`` recipes), as are hue/saturation/grayscale (``batch_simclr_view`` has
    none; the embedded data set is grayscale).

    Args:
        images: uint8 tensor with shape (B, C, H, W).
        info: gives ``hflip``, ``mean`` and ``std``.
        solarize_p: probability of solarising an image.
        generator: source of randomness.

    Returns:
        Normalised float tensor with shape (B, C, H, W).
    """
    x = batch_simclr_view(images, info, generator=generator)
    if solarize_p <= 0:
        return x
    b, c = x.shape[:2]
    m = torch.tensor(info.mean, device=x.device).view(1, c, 1, 1)
    s = torch.tensor(info.std, device=x.device).view(1, c, 1, 1)
    raw = x * s + m
    sol = torch.where(raw >= 0.5, 1.0 - raw, raw)
    apply = (torch.rand(b, device=x.device, generator=generator) < solarize_p).view(b, 1, 1, 1)
    return (torch.where(apply, sol, raw) - m) / s


class _TensorPoolBatches:
    """Shuffled full batches of two batched views of an in-memory uint8 pool."""

    def __init__(self, images: torch.Tensor, info: DatasetInfo, objective: str, batch_size: int) -> None:
        self.images, self.info, self.objective = images, info, objective
        self.batch_size = min(batch_size, len(images))

    def __len__(self) -> int:
        return len(self.images) // self.batch_size

    def epoch(self, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator().manual_seed(seed)
        perm = torch.randperm(len(self.images), generator=gen)
        for i in range(len(self)):
            x = self.images[perm[i * self.batch_size : (i + 1) * self.batch_size]]
            if self.objective == "byol":
                yield (
                    batch_byol_view(x, self.info, solarize_p=0.0, generator=gen),
                    batch_byol_view(x, self.info, solarize_p=0.2, generator=gen),
                )
            else:
                yield (
                    batch_simclr_view(x, self.info, generator=gen),
                    batch_simclr_view(x, self.info, generator=gen),
                )


class _ViewPoolBatches:
    """Shuffled full batches of two per-sample view recipes (``byol1``/``byol2`` or ``simclr``)."""

    def __init__(self, dataset: ViewDataset, batch_size: int, num_workers: int = 0) -> None:
        self.dataset = dataset
        self.batch_size = min(batch_size, len(dataset))
        self.num_workers = num_workers

    def __len__(self) -> int:
        return len(self.dataset) // self.batch_size

    def epoch(self, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        torch.manual_seed(seed)
        loader = make_loader(
            self.dataset, batch_size=self.batch_size, shuffle=True, seed=seed, drop_last=True
        )
        for (x1, x2), _, _ in loader:
            yield x1, x2


# ---- MoCo queue -------------------------------------------------------------------------------------
class MoCoQueue:
    """FIFO queue of ``size`` L2-normalised keys stored as rows (K, D), overwritten oldest-first.

    Starts as random unit vectors (MoCo's code) drawn from ``generator``.
    """

    def __init__(self, size: int, dim: int, *, generator: torch.Generator | None = None) -> None:
        self.keys = nn.functional.normalize(torch.randn(size, dim, generator=generator), dim=1)
        self.ptr = 0

    def to(self, device: torch.device) -> MoCoQueue:
        self.keys = self.keys.to(device)
        return self

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write ``keys`` (B, D) over the oldest rows, wrapping around the end."""
        size = len(self.keys)
        keys = keys.detach()[-size:]
        idx = (self.ptr + torch.arange(len(keys), device=self.keys.device)) % size
        self.keys[idx] = keys.to(self.keys)
        self.ptr = int((self.ptr + len(keys)) % size)

    def state_dict(self) -> dict[str, Any]:
        return {"keys": self.keys.clone(), "ptr": self.ptr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.keys.copy_(state["keys"])
        self.ptr = int(state["ptr"])


# ---- the trainer ------------------------------------------------------------------------------------
def _lars_groups(groups: list[dict]) -> list[dict]:
    """BYOL's LARS: adapt the decayed weights, not biases / normalisation parameters."""
    return [{**g, "always_adapt": not g["name"].endswith("/no_decay")} for g in groups]


class TargetPretrainer:
    """Stage-1 state (online and target/key networks, optimiser, schedule, queue) and its steps.

    ``model`` is an ``nn.ModuleDict`` with ``backbone``, ``projector`` and (BYOL) ``predictor``;
    ``target`` holds the EMA ``backbone`` + ``projector`` (BYOL target / MoCo key encoder).
    ``global_step`` counts optimiser steps; one call of :meth:`train_epoch` is one epoch.
    """

    def __init__(self, cfg: TargetPretrainConfig) -> None:
        if cfg.pretrained == "auto":
            raise ConfigError(
                "pretrained",
                "auto",
                "must be resolved to a checkpoint path before training; give a path or none",
            )
        self.cfg = cfg
        seed_everything(cfg.seed)
        self.device = resolve_device(cfg.device)
        self.info = resolve_info(cfg.dataset, cfg.image_size)
        self.loaded = load_dataset_cached(cfg.dataset, cfg.data_root, False)
        self.pool = target_pool(cfg)
        if isinstance(self.loaded.train, TensorImageDataset):
            # views are drawn on the CPU with a CPU generator, then moved with the batch
            images = self.loaded.train.images[torch.from_numpy(self.pool)]
            self.batches: _TensorPoolBatches | _ViewPoolBatches = _TensorPoolBatches(
                images, self.info, cfg.objective, cfg.batch_size
            )
        else:
            views = ["byol1", "byol2"] if cfg.objective == "byol" else ["simclr", "simclr"]
            self.batches = _ViewPoolBatches(
                ViewDataset(self.loaded.train, self.pool, build_views(self.info, views)),
                cfg.batch_size,
                cfg.num_workers,
            )
        if len(self.batches) == 0:
            raise ConfigError("batch_size", cfg.batch_size, f"the pool has only {len(self.pool)} images")

        backbone = create_backbone(cfg.backbone)
        if cfg.pretrained != "none":
            load_backbone_weights(backbone, cfg.pretrained, format=cfg.checkpoint_format)
        dim, hidden = cfg.projector_dims
        parts: dict[str, nn.Module] = {
            "backbone": backbone,
            "projector": ProjectionHead(backbone.num_features, hidden, dim, normalize=False),
        }
        if cfg.objective == "byol":
            parts["predictor"] = ProjectionHead(dim, cfg.pred_hidden, dim, normalize=False)
        self.model = nn.ModuleDict(parts).to(self.device)
        self.target = nn.ModuleDict(
            {k: copy.deepcopy(self.model[k]) for k in ("backbone", "projector")}
        ).requires_grad_(False)
        #: Φ_pre of Eq. 3: the backbone parameters at the start of stage 1
        self.init_params = [p.detach().clone() for p in self.model["backbone"].parameters()]
        self.queue: MoCoQueue | None = None
        self._pending_keys: torch.Tensor | None = None
        if cfg.objective == "moco_v2":
            gen = torch.Generator().manual_seed(cfg.seed)
            self.queue = MoCoQueue(cfg.moco_queue, dim, generator=gen).to(self.device)

        groups = param_groups(self.model, lr=cfg.scaled_lr, weight_decay=cfg.weight_decay)
        if cfg.optimizer == "lars":
            groups = _lars_groups(groups)
        self.optimizer = build_optimizer(
            groups, name=cfg.optimizer, lr=cfg.scaled_lr, momentum=cfg.momentum, nesterov=False
        )
        self.steps_per_epoch = min(len(self.batches), cfg.max_train_batches or len(self.batches))
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.scheduler = build_scheduler(
            self.optimizer,
            schedule="cosine",
            epochs=cfg.epochs,
            steps_per_epoch=self.steps_per_epoch,
            warmup_epochs=cfg.warmup_epochs,
        )
        self.epoch = 0
        self.global_step = 0

    # ---- one step ------------------------------------------------------------------------------
    def _online(self, x: torch.Tensor) -> torch.Tensor:
        return self.model["projector"](self.model["backbone"](x))

    @torch.no_grad()
    def _target(self, x: torch.Tensor) -> torch.Tensor:
        return self.target["projector"](self.target["backbone"](x))

    def l2_term(self) -> torch.Tensor:
        """‖Φ − Φ_pre‖²₂ over the backbone parameters."""
        return l2_to_init(self.model["backbone"].parameters(), self.init_params)

    def loss(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The stage-1 loss of one batch of two views (no update, no enqueue)."""
        cfg = self.cfg
        if cfg.objective == "byol":
            p1 = self.model["predictor"](self._online(x1))
            p2 = self.model["predictor"](self._online(x2))
            z1, z2 = self._target(x1), self._target(x2)
            ssl = byol_loss(p1, z2) + byol_loss(p2, z1)
            if cfg.byol_reduction == "sum":
                ssl = ssl * (len(x1) / 4)  # Σ_i (1 − cos_i), averaged over the two directions
            keys = None
        else:
            q = self._online(x1)
            keys = nn.functional.normalize(self._target(x2), dim=1)
            ssl = moco_infonce_loss(q, keys, self.queue.keys, cfg.moco_temperature)
        logs: dict[str, torch.Tensor] = {"ssl": ssl.detach()}
        loss = ssl
        if cfg.l2_init > 0:
            l2 = self.l2_term()
            loss = loss + cfg.l2_init * l2
            logs["l2_init"] = l2.detach()
        self._pending_keys = keys
        return loss, logs

    def momentum(self) -> float:
        """Target / key-encoder momentum of the update after step ``global_step``."""
        if self.cfg.objective == "moco_v2":
            return self.cfg.moco_momentum
        return byol_momentum(min(self.global_step, self.total_steps), self.total_steps, self.cfg.tau_base)

    def after_step(self) -> None:
        """After each optimiser step: move the target / key encoder, enqueue the keys."""
        m = self.momentum()
        ema_update(self.target["backbone"], self.model["backbone"], m)
        ema_update(self.target["projector"], self.model["projector"], m)
        if self.queue is not None and self._pending_keys is not None:
            self.queue.enqueue(self._pending_keys)
        self._pending_keys = None
        self.global_step += 1

    def train_epoch(self) -> dict[str, float]:
        """One epoch (at most ``max_train_batches`` steps); returns batch-mean logs."""
        seed = epoch_seed(self.cfg.seed, self.epoch)
        torch.manual_seed(seed)
        self.model.train()
        self.target.train()

        def step(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict]:
            x1, x2 = (x.to(self.device, non_blocking=True) for x in batch)
            return self.loss(x1, x2)

        logs = train_epoch(
            step,
            self.batches.epoch(seed),
            self.optimizer,
            self.scheduler,
            max_batches=self.cfg.max_train_batches,
            after_step=self.after_step,
        )
        self.epoch += 1
        return logs

    # ---- outputs ---------------------------------------------------------------------------------
    def backbone_state(self) -> dict[str, torch.Tensor]:
        """The online backbone's state dict with ``backbone.`` keys (``format="ftsweep"``)."""
        return {
            f"backbone.{k}": v.detach().cpu().clone() for k, v in self.model["backbone"].state_dict().items()
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "queue": self.queue.state_dict() if self.queue is not None else None,
            "init_params": [p.cpu() for p in self.init_params],
            "epoch": self.epoch,
            "global_step": self.global_step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.queue is not None:
            self.queue.load_state_dict(state["queue"])
        for p, saved in zip(self.init_params, state["init_params"], strict=True):
            p.copy_(saved)
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])

    @torch.no_grad()
    def clustering(self) -> dict[str, float]:
        """Clustering accuracy (%) of the online backbone's features on the pool and the test part."""
        return clustering_metrics(
            self.model["backbone"], self.cfg, self.device, pool=self.pool, loaded=self.loaded, info=self.info
        )


@torch.no_grad()
def clustering_metrics(
    backbone: nn.Module,
    cfg: TargetPretrainConfig,
    device: torch.device,
    *,
    pool: np.ndarray,
    loaded: Any,
    info: DatasetInfo,
    batch_size: int = 512,
) -> dict[str, float]:
    """``cluster/train_acc`` and ``cluster/test_acc`` (percent): k-means with K = #classes on the
    backbone features of the eval view, scored with the best one-to-one cluster → class mapping
    (Eq. 8-9). "Train" is the stage-1 pool (labels are used only for scoring)."""
    was_training = backbone.training
    backbone.eval()
    ev = build_view(info, "eval")
    out = {}
    parts = (
        ("train", ViewDataset(loaded.train, pool, ev)),
        ("test", ViewDataset(loaded.test, np.arange(len(loaded.test)), ev)),
    )
    for name, ds in parts:
        feats, labels = extract_features(
            backbone, make_loader(ds, batch_size=batch_size, shuffle=False), device
        )
        acc = kmeans_clustering_accuracy(
            feats, labels, info.num_classes, seed=cfg.seed, n_init=cfg.cluster_n_init
        )
        out[f"cluster/{name}_acc"] = 100.0 * acc
    backbone.train(was_training)
    return out


# ---- entry points ------------------------------------------------------------------------------------
def pretrain_target(cfg: TargetPretrainConfig, out_path: str | Path, *, log: bool = True) -> dict[str, float]:
    """Run stage 1 for ``cfg`` and write the backbone checkpoint (``backbone.`` keys) to ``out_path``.

    Returns:
        Final metrics: ``train/loss`` (and ``train/ssl``, ``train/l2_init``) of the last epoch,
        ``time/epoch_s`` (mean), ``time/total_s``, ``images`` (pool size), ``steps``.
    """
    t0 = time.perf_counter()
    trainer = TargetPretrainer(cfg)
    t_train = time.perf_counter()
    logs: dict[str, float] = {}
    for epoch in range(cfg.epochs):
        logs = trainer.train_epoch()
        if log and ((epoch + 1) % 10 == 0 or epoch + 1 == cfg.epochs):
            print(
                f"  stage-1 {cfg.objective} epoch {epoch + 1}/{cfg.epochs}  loss {logs['loss']:.4f}",
                flush=True,
            )
    t_end = time.perf_counter()
    torch.save(trainer.backbone_state(), out_path)
    return {
        **{f"train/{k}": float(v) for k, v in logs.items()},
        "time/epoch_s": (t_end - t_train) / cfg.epochs,
        "time/total_s": t_end - t0,
        "images": float(len(trainer.pool)),
        "steps": float(trainer.global_step),
    }


def stage1_key(cfg: TargetPretrainConfig) -> str:
    """sha256 of the canonical JSON of the fields that determine the stage-1 weights.

    Unset projector sizes are filled with the objective's defaults first, so ``proj_dim=None``
    and the default written out give the same key.
    """
    dim, hidden = cfg.projector_dims
    values = replace(cfg, proj_dim=dim, proj_hidden=hidden).to_dict()
    for name in _KEY_EXCLUDE:
        values.pop(name)
    if values["image_size"] is None:
        values.pop("image_size")  # the dataset's own size: keys written before the field existed stay valid
    values["_format"] = _KEY_VERSION
    blob = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def stage1_checkpoint(cfg: TargetPretrainConfig, cache_dir: str | Path) -> Path:
    """The stage-1 backbone checkpoint of ``cfg``, built once per distinct config.

    The file is ``<cache_dir>/stage1/<tag>-<sha256[:16]>.pt`` (:func:`stage1_key`), with the
    config and the training metrics beside it in ``.json``. Built under
    :func:`ftsweep.cache.build_once`: concurrent callers wait for one builder, the file appears
    atomically, and a failed build leaves ``.failed`` with the reason.

    Raises:
        CachedBuildError: this or an earlier build of the same config failed.
        ConfigError: ``pretrained`` is still ``auto``.
    """
    if cfg.pretrained == "auto":
        raise ConfigError("pretrained", "auto", "must be resolved to a checkpoint path before stage 1")
    path = Path(cache_dir).resolve() / "stage1" / f"{cfg.tag()}-{stage1_key(cfg)[:16]}.pt"

    def build(tmp: Path) -> None:
        metrics = pretrain_target(cfg, tmp, log=False)
        meta = {"config": cfg.to_dict(), "key": stage1_key(cfg), "metrics": metrics}
        side = path.with_suffix(".json")
        side_tmp = side.with_name(f".{side.name}.{os.getpid()}.tmp")
        side_tmp.write_text(json.dumps(meta, indent=2, default=str))
        os.replace(side_tmp, side)

    return build_once(path, build)
