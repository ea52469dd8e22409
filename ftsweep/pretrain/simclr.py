"""SimCLR self-supervised pretraining: ftsweep's own stand-in for a downloaded SSL checkpoint.

Offline there are no pre-trained weights to download, so ``ftsweep pretrain`` trains the default
backbone with NT-Xent on two augmented views of the train part of a dataset (test images are
never seen; labels are never used) and stores the backbone's state dict with ``backbone.`` keys.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from ftsweep.backbones import ProjectionHead, create_backbone
from ftsweep.cache import build_once
from ftsweep.config import BaseConfig, check
from ftsweep.data import (
    TensorImageDataset,
    ViewDataset,
    build_views,
    get_dataset_info,
    load_dataset_cached,
)
from ftsweep.data.batch_views import batch_simclr_view
from ftsweep.engine import (
    build_optimizer,
    build_scheduler,
    epoch_seed,
    make_loader,
    param_groups,
    resolve_device,
    seed_everything,
    train_epoch,
)
from ftsweep.losses import nt_xent_loss

__all__ = ["SimCLRConfig", "default_checkpoint", "pretrain_simclr"]


@dataclass(frozen=True)
class SimCLRConfig(BaseConfig):
    """Hyperparameters of ``ftsweep pretrain`` (SimCLR, NT-Xent at ``temperature``)."""

    method: ClassVar[str] = "simclr"

    dataset: str = "digits"
    data_root: str = "data"
    download: bool = False
    backbone: str = "small_cnn"
    epochs: int = 60
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-6
    temperature: float = 0.5
    proj_dim: int = 128
    seed: int = 0
    device: str = "auto"

    def validate(self) -> None:
        """Range checks; ``dataset`` a registered name or a valid image folder, ``data_root`` a
        directory or a path not made yet (:func:`~ftsweep.config.base.check_data_root`)."""
        from ftsweep.config.base import check_data_root
        from ftsweep.data import validate_dataset

        validate_dataset(self.dataset, "dataset")
        check_data_root(self.data_root)
        check(self.seed, "seed", ge=0, lt=2**32)
        check(self.epochs, "epochs", ge=1)
        check(self.batch_size, "batch_size", ge=2)
        check(self.lr, "lr", gt=0)
        check(self.weight_decay, "weight_decay", ge=0)
        check(self.temperature, "temperature", gt=0)
        check(self.proj_dim, "proj_dim", ge=1)

    def tag(self) -> str:
        """The checkpoint's file name (no suffix): a registered dataset by its name, an image
        folder by its folder name and a hash of its absolute path (a path in a file name would
        place the checkpoint outside its root)."""
        from ftsweep.data import get_dataset_info, is_folder_dataset
        from ftsweep.data.transforms import small_ssl_views

        data = self.dataset
        if is_folder_dataset(data):
            folder = Path(data).expanduser().resolve()
            data = f"{folder.name}-{hashlib.sha256(str(folder).encode()).hexdigest()[:8]}"
        backbone = self.backbone.replace("/", "_")
        tag = f"{data}-{backbone}-simclr-e{self.epochs}-b{self.batch_size}-s{self.seed}"
        # per-image views at <= 64 px crop at SSL_CROP_SCALE since (0.35, 1): a checkpoint of its own
        return f"{tag}-crop008" if small_ssl_views(get_dataset_info(self.dataset)) else tag


def _train(cfg: SimCLRConfig, out: Path, final: Path, log: bool) -> None:
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    info = get_dataset_info(cfg.dataset)
    loaded = load_dataset_cached(cfg.dataset, cfg.data_root, cfg.download)
    all_idx = torch.arange(len(loaded.train)).numpy()
    fast = isinstance(loaded.train, TensorImageDataset)
    # in-memory images: batched views (same family as the "simclr" recipe, ~50x less overhead)
    pool = ViewDataset(
        loaded.train,
        all_idx,
        (lambda img: img) if fast else build_views(info, ["simclr", "simclr"]),
    )
    backbone = create_backbone(cfg.backbone)
    model = nn.ModuleDict(
        {
            "backbone": backbone,
            "projector": ProjectionHead(backbone.num_features, 256, cfg.proj_dim),
        }
    ).to(device)
    opt = build_optimizer(
        param_groups(model, lr=cfg.lr, weight_decay=cfg.weight_decay), name="adam", lr=cfg.lr
    )
    steps = -(-len(pool) // cfg.batch_size)
    sched = build_scheduler(opt, schedule="cosine", epochs=cfg.epochs, steps_per_epoch=steps)

    def step(batch: tuple) -> tuple[torch.Tensor, dict[str, float]]:
        if fast:
            x, _, _ = batch
            x1, x2 = batch_simclr_view(x, info), batch_simclr_view(x, info)
        else:
            (x1, x2), _, _ = batch
        z1 = model["projector"](model["backbone"](x1.to(device)))
        z2 = model["projector"](model["backbone"](x2.to(device)))
        return nt_xent_loss(z1, z2, cfg.temperature), {}

    t0 = time.perf_counter()
    model.train()
    for epoch in range(cfg.epochs):
        seed = epoch_seed(cfg.seed, epoch)
        torch.manual_seed(seed)
        loader = make_loader(pool, batch_size=cfg.batch_size, shuffle=True, seed=seed, drop_last=True)
        logs = train_epoch(step, loader, opt, sched)
        if log and (epoch + 1) % 10 == 0:
            print(f"  pretrain epoch {epoch + 1}/{cfg.epochs}  nt-xent {logs['loss']:.3f}", flush=True)
    state = {f"backbone.{k}": v.detach().cpu() for k, v in model["backbone"].state_dict().items()}
    torch.save(state, out)
    meta = {**cfg.to_dict(), "seconds": round(time.perf_counter() - t0, 1), "images": len(pool)}
    final.with_suffix(".json").write_text(json.dumps(meta, indent=2))


def default_checkpoint(root: str | Path, cfg: SimCLRConfig | None = None) -> Path:
    """Where the checkpoint of ``cfg`` lives under ``root`` (``results/pretrained``)."""
    cfg = cfg or SimCLRConfig()
    return Path(root).resolve() / f"{cfg.tag()}.pt"


def pretrain_simclr(
    cfg: SimCLRConfig,
    root: str | Path = "results/pretrained",
    *,
    log: bool = True,
    force: bool = False,
) -> Path:
    """Return the checkpoint of ``cfg``, training it once if it does not exist yet.

    Built under :func:`ftsweep.cache.build_once` (one builder across processes, atomic file, a
    failure remembered in ``.failed``, an interrupt not). ``force`` retrains under the same lock
    and replaces an existing checkpoint atomically.
    """
    path = default_checkpoint(root, cfg)
    if log and (force or not path.exists()):
        print(f"ftsweep: pretraining {cfg.backbone} on {cfg.dataset} with SimCLR → {path}", flush=True)
    return build_once(
        path,
        lambda tmp: _train(cfg, tmp, path, log),
        retry_failed=force,
        valid=(lambda _: False) if force else None,
    )
