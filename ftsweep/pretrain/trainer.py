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

The output is the backbone's state dict with ``backbone.`` keys (``format="ftsweep"``);
:func:`ftsweep.pretrain.stage1.stage1_checkpoint` stores it once per distinct config in a
build-once cache.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ftsweep.backbones import ProjectionHead, create_backbone, load_backbone_weights, projection_mlp
from ftsweep.config import ConfigError
from ftsweep.data import TensorImageDataset, ViewDataset, build_views, load_dataset_cached, resolve_info
from ftsweep.data.gpu_views import device_view_stream, use_device_views
from ftsweep.engine import (
    build_optimizer,
    build_scheduler,
    epoch_seed,
    param_groups,
    resolve_channels_last,
    resolve_device,
    resolve_precision,
    seed_everything,
    train_epoch,
)
from ftsweep.engine.ema import byol_momentum, ema_update
from ftsweep.losses import byol_loss, l2_to_init, moco_infonce_loss
from ftsweep.metrics.clustering import clustering_metrics
from ftsweep.pretrain.config import TargetPretrainConfig
from ftsweep.pretrain.moco import MoCoQueue
from ftsweep.pretrain.pool import TensorPoolBatches, ViewPoolBatches, target_pool

__all__ = ["TargetPretrainer", "run_settings"]


def _lars_groups(groups: list[dict]) -> list[dict]:
    """BYOL's LARS: adapt the decayed weights, not biases / normalisation parameters."""
    return [{**g, "always_adapt": not g["name"].endswith("/no_decay")} for g in groups]


def run_settings(cfg: TargetPretrainConfig, device: torch.device | None = None) -> dict[str, Any]:
    """``precision`` and ``device_views``: what ``cfg.precision`` and ``cfg.gpu_augment`` resolve
    to on ``device`` (default: ``cfg.device`` on this machine) — what the trainer runs with, and
    the keyword arguments of :func:`ftsweep.pretrain.stage1.stage1_key`."""
    device = resolve_device(cfg.device) if device is None else device
    return {
        "precision": resolve_precision(cfg.precision, device),
        "device_views": use_device_views(cfg.gpu_augment, device),
    }


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
        #: as the fine-tuners: autocast precision, NHWC layout and device views on CUDA
        settings = run_settings(cfg, self.device)
        self.precision, self.device_views = settings["precision"], settings["device_views"]
        backbone = create_backbone(cfg.backbone)
        self.channels_last = resolve_channels_last(cfg.channels_last, self.device, backbone)
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        views = ["byol1", "byol2"] if cfg.objective == "byol" else ["simclr", "simclr"]
        if isinstance(self.loaded.train, TensorImageDataset):
            # views are drawn batched with a generator where the images are: the CPU, or the
            # training device with device views
            images = self.loaded.train.images[torch.from_numpy(self.pool)]
            if self.device_views:
                images = images.to(self.device)
            self.batches: TensorPoolBatches | ViewPoolBatches = TensorPoolBatches(
                images, self.info, cfg.objective, cfg.batch_size, memory_format=fmt
            )
        elif self.device_views:
            dataset, batch_view = device_view_stream(
                ViewDataset(self.loaded.train, self.pool, build_views(self.info, views)),
                self.info,
                views,
                "pool",
                memory_format=fmt,
            )
            self.batches = ViewPoolBatches(
                dataset, cfg.batch_size, cfg.num_workers, device=self.device, batch_view=batch_view
            )
        else:
            self.batches = ViewPoolBatches(
                ViewDataset(self.loaded.train, self.pool, build_views(self.info, views)),
                cfg.batch_size,
                cfg.num_workers,
                device=self.device,
            )
        if len(self.batches) == 0:
            raise ConfigError("batch_size", cfg.batch_size, f"the pool has only {len(self.pool)} images")

        if cfg.pretrained != "none":
            load_backbone_weights(backbone, cfg.pretrained, format=cfg.checkpoint_format)
        dim, hidden = cfg.projector_dims
        # BYOL's projector has BatchNorm; MoCo v2's (``--mlp``) is Linear-ReLU-Linear
        projector: nn.Module = (
            projection_mlp(backbone.num_features, hidden, dim, 2)
            if cfg.objective == "moco_v2"
            else ProjectionHead(backbone.num_features, hidden, dim, normalize=False)
        )
        parts: dict[str, nn.Module] = {"backbone": backbone, "projector": projector}
        if cfg.objective == "byol":
            parts["predictor"] = ProjectionHead(dim, cfg.pred_hidden, dim, normalize=False)
        self.model = nn.ModuleDict(parts).to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
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
            precision=self.precision,
            device=self.device,
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
            self.model["backbone"],
            self.device,
            pool=self.pool,
            loaded=self.loaded,
            info=self.info,
            seed=self.cfg.seed,
            n_init=self.cfg.cluster_n_init,
        )
