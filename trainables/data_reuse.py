"""Fine-tuning on target data plus selected pre-training data (UOT paper, Sec. 3.2–3.3).

At setup the pre-trained model extracts features of the source (pre-training) and target
training images — the penultimate (pooled backbone) features, or for a MoCo checkpoint the
output of its projection head (``feature_layer``; Sec. 4.1 uses MoCo-v2's 128-d FC output) —
Parquet-cached by checkpoint digest, dataset, transform, crop size (``image_size``) and layer
under ``cache_dir``; the source is split into units — its classes when ``source_labels``, cosine
k-means clusters otherwise — and ``k`` units are selected by UOT (Eq. 5), Greedy-OT, random or
label-based selection. Training then draws, at every step, a target batch and a batch of the
same size from the selected source images:

- labeled reuse (Eq. 6): two heads on one backbone, loss = CE(target head) + λ·CE(source head
  over all source classes);
- unlabeled reuse (Eq. 7): one head; each selected image gets a weak and a strong view, the
  weak view's softmax (no temperature, no threshold, no gradient) is the soft label of the
  strong view: loss = CE(target) + λ·softCE(strong, softmax(weak)).

``selection: none`` is plain fine-tuning, the baseline row of Table 1. The selected unit ids,
their scores and the recall go to ``selection.json`` in the trial directory; ``step()`` reports
``selection/k``, ``selection/num_units``, ``selection/num_images`` and, when the true matching
units are known (``true_units`` or a registered pair such as digits_source → digits_target),
``selection/recall`` (Table 4's recall rate) and ``selection/precision`` (share of selected
images whose class truly matches).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ftsweep.backbones import (
    PROJECTION_FORMATS,
    CheckpointError,
    classifier_head,
    load_projection_head,
    load_state_dict_file,
    resolve_format,
)
from ftsweep.config import ConfigError, TrainConfig, check
from ftsweep.data import (
    ViewDataset,
    build_view,
    build_views,
    get_dataset_info,
    load_dataset_cached,
    resolve_info,
)
from ftsweep.data.reuse import true_matches, unit_members
from ftsweep.engine import StepOutput, cycle, make_loader
from ftsweep.losses import soft_cross_entropy
from ftsweep.selection import (
    FEATURE_LAYERS,
    cached_features,
    checkpoint_digest,
    class_means,
    cluster_units,
    extract_features,
    greedy_ot_scores,
    label_selection,
    random_selection,
    recall_rate,
    resolve_feature_layer,
    select,
    uot_scores,
)
from trainables._base import FineTuneTrainable
from trainables._registry import register_trainable

SELECTIONS = ("none", "uot", "greedy_ot", "random", "label")


@dataclass(frozen=True)
class DataReuseConfig(TrainConfig):
    """Joint fine-tuning on the target and selected source data.

    Defaults are the paper's (Sec. 4.1): SGD Nesterov, 100 epochs, lr ÷10 at epochs 60 and 80,
    batch 256 per stream, k = 100 classes, UOT with ε = 1, τ1 = 1, τ2 = 100, ε_c = 0.01,
    K = 2000 clusters without labels. The data defaults are the offline digits pair.

    Attributes:
        source_dataset: the pre-training set to reuse (``imagenet`` in the paper).
        source_labels: use the source labels (classes as units, Eq. 6) or not (k-means
            clusters as units, Eq. 7).
        selection: ``none`` (plain fine-tuning), ``uot``, ``greedy_ot``, ``random`` or
            ``label`` (the true matching classes; ``k`` is then ignored).
        k: number of selected units (classes or clusters); must not exceed the units.
        num_clusters: K of the cosine k-means when ``source_labels`` is false.
        eps, tau1, tau2, eps_c: UOT's entropic weight, source / target marginal KL weights and
            cost temperature (C = (1 − cos)/ε_c).
        metric: ground cost, ``l2`` or ``cosine`` (Table 4's GOT/UOT × l2/cos); ``auto`` = l2
            for Greedy-OT (Cui et al.) and cosine for UOT (Sec. 4.1).
        lambda_: weight λ ≥ 0 of the source loss.
        true_units: the source units that truly match the target (recall and ``label``
            selection); empty = the registered mapping of the pair, if any.
        feature_layer: what represents an image for selection and k-means: ``penultimate``
            (the pooled backbone output), ``projection`` (the checkpoint's MoCo projection
            head on top of it; needs a MoCo checkpoint with ``encoder_q.fc``) or ``auto`` =
            projection for MoCo checkpoints (``checkpoint_format`` moco_v2, or auto-detected
            as such), penultimate otherwise (Sec. 4.1).
        feature_batch_size: images per forward pass of the feature extraction.
    """

    method: ClassVar[str] = "data_reuse"

    dataset: str = "digits_target"
    source_dataset: str = "digits_source"
    source_labels: bool = True
    selection: str = "uot"
    k: int = 100
    num_clusters: int = 2000
    eps: float = 1.0
    tau1: float = 1.0
    tau2: float = 100.0
    eps_c: float = 0.01
    metric: str = "auto"
    lambda_: float = 1.0
    true_units: tuple[int, ...] = ()
    feature_layer: str = "auto"
    feature_batch_size: int = 256
    batch_size: int = 256
    epochs: int = 100
    schedule: str = "step"
    milestones: tuple[int, ...] = (60, 80)
    weight_decay: float = 1e-4

    def validate(self) -> None:
        super().validate()
        from ftsweep.data import DATASETS

        check(self.source_dataset, "source_dataset", choices=sorted(DATASETS))
        check(self.selection, "selection", choices=SELECTIONS)
        check(self.k, "k", ge=1)
        check(self.num_clusters, "num_clusters", ge=1)
        for name in ("eps", "tau1", "tau2", "eps_c"):
            check(getattr(self, name), name, gt=0)
        check(self.metric, "metric", choices=("auto", "l2", "cosine"))
        check(self.lambda_, "lambda_", ge=0)
        check(self.feature_batch_size, "feature_batch_size", ge=1)
        check(self.feature_layer, "feature_layer", choices=FEATURE_LAYERS)
        if self.feature_layer == "projection":
            head_formats = ("auto", *PROJECTION_FORMATS)
            if self.pretrained in ("none", "", "auto"):
                raise ConfigError(
                    "feature_layer",
                    "projection",
                    f"needs a MoCo checkpoint with a projection head as pretrained, not "
                    f"{self.pretrained or 'none'!r} (use penultimate or auto)",
                )
            if self.checkpoint_format not in head_formats:
                raise ConfigError(
                    "feature_layer",
                    "projection",
                    f"needs checkpoint_format {' or '.join(head_formats)} (a checkpoint with a "
                    f"projection head), not {self.checkpoint_format!r}",
                )
        for u in self.true_units:
            check(u, "true_units", ge=0)
        if self.selection in ("none", "label"):
            pass
        elif self.source_labels:
            n = get_dataset_info(self.source_dataset).num_classes
            if self.k > n:
                raise ConfigError("k", self.k, f"must be <= the {n} classes of {self.source_dataset}")
        elif self.k > self.num_clusters:
            raise ConfigError("k", self.k, f"must be <= num_clusters ({self.num_clusters})")
        if self.selection == "label":
            if not self.source_labels:
                raise ConfigError("selection", "label", "label selection needs source_labels: true")
            if not self.true_units and true_matches(self.source_dataset, self.dataset) is None:
                raise ConfigError(
                    "true_units",
                    (),
                    f"label selection needs the source classes matching {self.dataset}: give "
                    f"true_units (no known mapping for {self.source_dataset} -> {self.dataset})",
                )

    @property
    def cost_metric(self) -> str:
        if self.metric != "auto":
            return self.metric
        return "l2" if self.selection == "greedy_ot" else "cosine"


class _Pairs(Dataset):
    """``(x, y)`` items of a ViewDataset (what ``ftsweep.selection.extract_features`` reads)."""

    def __init__(self, ds: ViewDataset) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x, y, _ = self.ds[i]
        return x, y


@register_trainable("data_reuse")
class DataReuseTrainable(FineTuneTrainable):
    """Target fine-tuning with a stream of selected pre-training data (Eq. 6 / Eq. 7)."""

    config_cls = DataReuseConfig
    cfg: DataReuseConfig
    smoke_config: ClassVar[dict] = {
        "dataset": "digits_target",
        "source_dataset": "digits_source",
        "k": 5,
        "num_clusters": 20,
        "batch_size": 32,
        "milestones": [],
    }

    # ---- model --------------------------------------------------------------------------
    @property
    def reuses(self) -> bool:
        return self.cfg.selection != "none"

    def build_heads(self, num_features: int) -> dict[str, nn.Module]:
        heads = super().build_heads(num_features)
        if self.reuses and self.cfg.source_labels:
            n_src = get_dataset_info(self.cfg.source_dataset).num_classes
            heads["source_classifier"] = classifier_head(num_features, n_src)
        return heads

    # ---- selection ----------------------------------------------------------------------
    @property
    def feature_layer(self) -> str:
        """``feature_layer`` with ``auto`` resolved from the checkpoint's format."""
        cfg = self.cfg
        if cfg.feature_layer != "auto" or cfg.pretrained in ("none", ""):
            return resolve_feature_layer(cfg.feature_layer, None)
        if self._feature_layer is None:  # reset by setup_method: an actor may be reused
            fmt = cfg.checkpoint_format
            if fmt == "auto":
                fmt = resolve_format(load_state_dict_file(cfg.pretrained))
            self._feature_layer = resolve_feature_layer("auto", fmt)
        return self._feature_layer

    def _feature_key(self, dataset: str) -> dict[str, Any]:
        cfg = self.cfg
        if cfg.pretrained in ("none", ""):
            weights = f"random-init-seed{cfg.seed}"
        else:
            weights = checkpoint_digest(cfg.pretrained)
        return {
            "checkpoint_sha256": weights,
            "checkpoint_format": cfg.checkpoint_format,
            "backbone": cfg.backbone,
            "dataset": dataset,
            "split": "train",
            "transform": "eval",
            "image_size": resolve_info(dataset, cfg.image_size).image_size,
            "layer": self.feature_layer,
        }

    def _feature_model(self) -> nn.Module:
        """The frozen map image → selection features: the backbone, then the MoCo head if asked."""
        backbone = self.model["backbone"]
        if self.feature_layer == "penultimate":
            return backbone
        cfg = self.cfg
        why = f"feature_layer {cfg.feature_layer} → projection needs the checkpoint's projection head"
        try:
            head = load_projection_head(cfg.pretrained, format=cfg.checkpoint_format)
        except CheckpointError as err:
            raise ConfigError(
                "feature_layer", cfg.feature_layer, f"{why} (else use penultimate): {err}"
            ) from err
        first = next(m for m in head.modules() if isinstance(m, nn.Linear))
        if first.in_features != backbone.num_features:
            raise ConfigError(
                "feature_layer",
                cfg.feature_layer,
                f"{why}: it takes {first.in_features} features but {cfg.backbone} gives "
                f"{backbone.num_features}",
            )
        model = nn.Sequential(backbone, head.to(self.device))
        model.train(backbone.training)  # extract_features restores this mode on every child
        return model

    def _features(self, dataset: str) -> tuple[np.ndarray, np.ndarray]:
        """(features, labels) of every train-part image of ``dataset``, in index order."""
        info = resolve_info(dataset, self.cfg.image_size)
        loaded = load_dataset_cached(dataset, self.cfg.data_root, self.cfg.download)
        ds = ViewDataset(loaded.train, np.arange(len(loaded.train)), build_view(info, "eval"))

        def compute() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            feats, labels = extract_features(
                self._feature_model(), _Pairs(ds), batch_size=self.cfg.feature_batch_size, device=self.device
            )
            return np.arange(len(ds), dtype=np.int64), feats, labels

        ids, feats, labels = cached_features(self.cfg.cache_dir, self._feature_key(dataset), compute)
        assert np.array_equal(ids, np.arange(len(ds))), f"feature cache of {dataset} is out of order"
        return feats, labels

    def _cluster(self, feats: np.ndarray) -> np.ndarray:
        """Cosine k-means assignment of every source image (cached beside the features)."""
        cfg = self.cfg
        if cfg.num_clusters > len(feats):
            raise ConfigError(
                "num_clusters",
                cfg.num_clusters,
                f"must be <= the {len(feats)} images of {cfg.source_dataset}",
            )
        key = {**self._feature_key(cfg.source_dataset), "kmeans": cfg.num_clusters, "kmeans_seed": cfg.seed}

        def compute() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            centroids, assign = cluster_units(feats, cfg.num_clusters, seed=cfg.seed)
            unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
            cos = np.sum(unit * centroids[assign], axis=1, keepdims=True)  # fit quality, for inspection
            return np.arange(len(feats), dtype=np.int64), cos.astype(np.float32), assign

        return cached_features(cfg.cache_dir, key, compute)[2]

    def _true_classes(self) -> np.ndarray | None:
        cfg = self.cfg
        if cfg.true_units:
            return np.unique(np.asarray(cfg.true_units, dtype=np.int64))
        known = true_matches(cfg.source_dataset, cfg.dataset)
        if known is None:
            return None
        return np.unique(np.asarray([s for v in known.values() for s in v], dtype=np.int64))

    def setup_method(self) -> None:
        cfg = self.cfg
        self._feature_layer: str | None = None
        self.selection: dict[str, Any] = {}
        self.selection_metrics: dict[str, float] = {}
        self.source_stream: ViewDataset | None = None
        if not self.reuses:
            return
        src_info = resolve_info(cfg.source_dataset, cfg.image_size)
        src = load_dataset_cached(cfg.source_dataset, cfg.data_root, cfg.download)
        src_classes = np.asarray(src.train_targets, dtype=np.int64)
        need_features = cfg.selection in ("uot", "greedy_ot") or not cfg.source_labels

        scores = None
        if need_features:
            src_feats, _ = self._features(cfg.source_dataset)
        if cfg.source_labels:
            units_of_image = src_classes
        else:
            units_of_image = self._cluster(src_feats)
        if need_features:
            src_means, unit_ids = class_means(src_feats, units_of_image)
        else:
            unit_ids = np.unique(units_of_image)
        num_units = len(unit_ids)
        kind = "classes" if cfg.source_labels else "non-empty k-means clusters"
        if cfg.selection != "label" and cfg.k > num_units:
            raise ConfigError("k", cfg.k, f"must be <= the {num_units} {kind} of {cfg.source_dataset}")

        if cfg.selection in ("uot", "greedy_ot"):
            tgt_feats, tgt_labels = self._features(cfg.dataset)
            rows = self.data.splits.labeled  # selection sees only the (sub-sampled) training split
            tgt_means, _ = class_means(tgt_feats[rows], tgt_labels[rows])
            if cfg.selection == "uot":
                scores = uot_scores(
                    src_means,
                    tgt_means,
                    eps=cfg.eps,
                    tau1=cfg.tau1,
                    tau2=cfg.tau2,
                    eps_c=cfg.eps_c,
                    cost=cfg.cost_metric,
                )
            else:
                scores = greedy_ot_scores(src_means, tgt_means, metric=cfg.cost_metric)  # type: ignore[arg-type]
            chosen = unit_ids[select(scores, cfg.k)]
        elif cfg.selection == "random":
            chosen = unit_ids[random_selection(num_units, cfg.k, seed=cfg.seed)]
        else:  # label
            true = self._true_classes()
            assert true is not None  # checked by the config
            chosen = label_selection(true, num_source_units=src_info.num_classes)

        members = unit_members(units_of_image, chosen, subsample=cfg.subsample, seed=cfg.seed)
        views = "standard" if cfg.source_labels else ("weak", "strong")
        self.source_stream = ViewDataset(
            src.train, members, build_views(src_info, views), hide_labels=not cfg.source_labels
        )

        metrics = {
            "selection/k": float(len(chosen)),
            "selection/num_units": float(num_units),
            "selection/num_images": float(len(members)),
        }
        true = self._true_classes()
        if true is not None:
            if cfg.source_labels:
                true_units = true
            else:  # a cluster truly matches when most of its images come from a matching class
                true_units = np.array(
                    [u for u in unit_ids if np.isin(src_classes[units_of_image == u], true).mean() > 0.5],
                    dtype=np.int64,
                )
            if len(true_units):
                metrics["selection/recall"] = recall_rate(chosen, true_units)
            metrics["selection/precision"] = float(np.isin(src_classes[members], true).mean())
        self.selection_metrics = metrics
        self.selection = {
            "selection": cfg.selection,
            "units": "classes" if cfg.source_labels else "clusters",
            "selected_units": [int(u) for u in chosen],
            "scores": None
            if scores is None
            else {int(u): float(s) for u, s in zip(unit_ids, scores, strict=True)},
            "true_units": None if true is None else [int(u) for u in true],
            **{k: v for k, v in metrics.items()},
        }
        self._write_selection()

    def _write_selection(self) -> None:
        logdir = getattr(self, "logdir", None)
        if logdir:
            Path(logdir).mkdir(parents=True, exist_ok=True)
            (Path(logdir) / "selection.json").write_text(json.dumps(self.selection, indent=1))

    def epoch_metrics(self, last: bool) -> dict[str, float]:
        return dict(self.selection_metrics)

    # ---- training -----------------------------------------------------------------------
    def train_batches(self, seed: int) -> Iterable:
        target = super().train_batches(seed)
        if self.source_stream is None:
            return ((batch, None) for batch in target)
        source = make_loader(
            self.source_stream,
            batch_size=self.cfg.batch_size,
            shuffle=True,
            seed=seed + 1,
            num_workers=self.cfg.num_workers,
            drop_last=True,
        )
        return _zip(target, cycle(source, seed + 1))

    def training_step(self, batch: Any) -> StepOutput:
        (xt, yt, _), source = batch
        xt, yt = xt.to(self.device), yt.to(self.device)
        ce_t = F.cross_entropy(self.predict(xt), yt)
        if source is None:
            return ce_t, {"ce_target": ce_t}
        lam = self.cfg.lambda_
        backbone = self.model["backbone"]
        if self.cfg.source_labels:
            xs, ys, _ = source
            logits_s = self.model["source_classifier"](backbone(xs.to(self.device)))
            ce_s = F.cross_entropy(logits_s, ys.to(self.device))
            return ce_t + lam * ce_s, {"ce_target": ce_t, "ce_source": ce_s}
        (x_weak, x_strong), _, _ = source
        with torch.no_grad():
            soft = F.softmax(self.predict(x_weak.to(self.device)), dim=1)
        sce = soft_cross_entropy(self.predict(x_strong.to(self.device)), soft)
        return ce_t + lam * sce, {"ce_target": ce_t, "soft_ce_source": sce}


def _zip(target: Iterable, source: Iterator) -> Iterator:
    for batch in target:
        yield batch, next(source)
