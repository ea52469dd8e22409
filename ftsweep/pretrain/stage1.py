"""Stage 1 as a shared artefact: run it once per distinct config and cache the backbone.

:func:`pretrain_target` trains :class:`~ftsweep.pretrain.trainer.TargetPretrainer` and writes the
backbone (``backbone.`` keys, ``format="ftsweep"``); :func:`stage1_checkpoint` keeps one such
file per :func:`stage1_key` under ``<cache_dir>/stage1``, built under
:func:`ftsweep.cache.build_once`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import torch

from ftsweep.cache import build_once
from ftsweep.config import ConfigError
from ftsweep.data import resolve_info
from ftsweep.data.transforms import SSL_CROP_SCALE, small_ssl_views
from ftsweep.pretrain.config import TargetPretrainConfig
from ftsweep.pretrain.trainer import TargetPretrainer, run_settings

__all__ = ["pretrain_target", "stage1_checkpoint", "stage1_key"]

#: fields that do not change the stage-1 weights, left out of the cache key. The pool
#: (train minus validation) does not depend on the label budget, so the budget is left out too
#: and every label budget of a dataset shares one stage-1 checkpoint, as in the paper. Like
#: ``device``, ``channels_last`` changes only the memory layout.
_KEY_EXCLUDE = (
    "data_root",
    "device",
    "channels_last",
    "eval_every",
    "cluster_n_init",
    "cache_dir",
    "num_workers",
    "labels_per_class",
    "num_labels",
)
#: bump when a code change alters what a config trains, so old cache entries are not reused
_KEY_VERSION = 1


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


def stage1_key(
    cfg: TargetPretrainConfig, *, precision: str | None = None, device_views: bool | None = None
) -> str:
    """sha256 of the canonical JSON of the fields that determine the stage-1 weights.

    Unset projector sizes are filled with the objective's defaults first, so ``proj_dim=None``
    and the default written out give the same key.

    ``precision`` / ``device_views``: what ``cfg.precision`` / ``cfg.gpu_augment`` resolve to on
    the device that trains (:func:`~ftsweep.pretrain.trainer.run_settings`). An ``auto`` that
    resolves to something else than the CPU's fp32 and per-image views keys as that value written
    out, so a GPU's bf16 checkpoint is not served to a CPU's ``auto`` and the other way round.
    Left None (the driver, which only tells builds apart), ``auto`` keys as fp32 and per-image
    views.
    """
    resolved = {"precision": precision, "gpu_augment": device_views}
    dim, hidden = cfg.projector_dims
    values = replace(cfg, proj_dim=dim, proj_hidden=hidden).to_dict()
    for name in _KEY_EXCLUDE:
        values.pop(name)
    if values["image_size"] is None:
        values.pop("image_size")  # the dataset's own size: keys written before the field existed stay valid
    for name, cpu in (("precision", "fp32"), ("gpu_augment", False)):
        if values[name] == "auto":  # on a CPU, what ran before the fields existed: left out
            if resolved[name] is None or resolved[name] == cpu:
                values.pop(name)
            else:  # bf16 / device views on a GPU: the key of that value written out
                values[name] = resolved[name]
    values["_format"] = _KEY_VERSION
    if cfg.objective == "moco_v2":
        values["_moco_head"] = "linear-relu-linear"  # was Linear-BN-ReLU-Linear: old entries not reused
    if small_ssl_views(resolve_info(cfg.dataset, cfg.image_size)):
        values["_ssl_crop"] = list(SSL_CROP_SCALE)  # was (0.35, 1) at <= 64 px: old entries not reused
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
    key = stage1_key(cfg, **run_settings(cfg))
    path = Path(cache_dir).resolve() / "stage1" / f"{cfg.tag()}-{key[:16]}.pt"

    def build(tmp: Path) -> None:
        metrics = pretrain_target(cfg, tmp, log=False)
        meta = {"config": cfg.to_dict(), "key": key, "metrics": metrics}
        side = path.with_suffix(".json")
        side_tmp = side.with_name(f".{side.name}.{os.getpid()}.tmp")
        side_tmp.write_text(json.dumps(meta, indent=2, default=str))
        os.replace(side_tmp, side)

    return build_once(path, build)
