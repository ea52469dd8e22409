"""The selection pipeline of the UOT paper (Sec. 3.2–3.3): features → units → scores → chosen set.

The pre-trained model extracts features of the source (pre-training) and target training images
— the penultimate (pooled backbone) features, or for a MoCo checkpoint the output of its
projection head (``feature_layer``; Sec. 4.1 uses MoCo-v2's 128-d FC output) — Parquet-cached
by checkpoint digest, dataset, transform, crop size (``image_size``) and layer under
``cache_dir`` (:class:`FeatureSource`). The source is split into units — its classes when
``source_labels``, cosine k-means clusters otherwise — and ``k`` units are selected by UOT
(Eq. 5), Greedy-OT, random or label-based selection (:func:`select_source_units`), which also
reports the recall (Table 4) and the precision of the chosen images when the true matching
units are known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from ftsweep.backbones import CheckpointError, load_projection_head, load_state_dict_file, resolve_format
from ftsweep.config import ConfigError
from ftsweep.data import ViewDataset, build_view, load_dataset_cached, resolve_info
from ftsweep.data.reuse import true_matches, unit_members
from ftsweep.engine import extract_features
from ftsweep.selection.baselines import label_selection, random_selection
from ftsweep.selection.features import cached_features, checkpoint_digest, resolve_feature_layer
from ftsweep.selection.greedy_ot import greedy_ot_scores
from ftsweep.selection.ranking import select
from ftsweep.selection.recall import recall_rate
from ftsweep.selection.units import class_means, cluster_units
from ftsweep.selection.uot import uot_scores

__all__ = [
    "SELECTIONS",
    "FeatureSource",
    "SourceSelection",
    "projection_head",
    "resolve_layer",
    "select_source_units",
    "true_source_classes",
]

SELECTIONS = ("none", "uot", "greedy_ot", "random", "label")


class _Pairs(Dataset):
    """``(x, y)`` items of a ViewDataset (what ``ftsweep.engine.extract_features`` reads)."""

    def __init__(self, ds: ViewDataset) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x, y, _ = self.ds[i]
        return x, y


def resolve_layer(feature_layer: str, pretrained: str, checkpoint_format: str) -> str:
    """``feature_layer`` with ``auto`` resolved from the checkpoint's format."""
    if feature_layer != "auto" or pretrained in ("none", ""):
        return resolve_feature_layer(feature_layer, None)
    fmt = checkpoint_format
    if fmt == "auto":
        fmt = resolve_format(load_state_dict_file(pretrained))
    return resolve_feature_layer("auto", fmt)


def projection_head(
    pretrained: str, checkpoint_format: str, feature_layer: str, backbone_name: str, num_features: int
) -> nn.Module:
    """The checkpoint file's MoCo projection head (:func:`load_projection_head`), checked to take
    the ``num_features`` pooled features of ``backbone_name``.

    Raises:
        ConfigError: on ``feature_layer`` — no head in the checkpoint, or one of another width.
    """
    why = f"feature_layer {feature_layer} → projection needs the checkpoint's projection head"
    try:
        head = load_projection_head(pretrained, format=checkpoint_format)
    except CheckpointError as err:
        raise ConfigError("feature_layer", feature_layer, f"{why} (else use penultimate): {err}") from err
    first = next(m for m in head.modules() if isinstance(m, nn.Linear))
    if first.in_features != num_features:
        raise ConfigError(
            "feature_layer",
            feature_layer,
            f"{why}: it takes {first.in_features} features but {backbone_name} gives {num_features}",
        )
    return head


@dataclass
class FeatureSource:
    """How train-part images become selection features: a frozen backbone (+ the MoCo head).

    Attributes:
        backbone: the model's backbone with its initial weights.
        backbone_name, pretrained, checkpoint_format: what the backbone is (cache key; the
            projection head is read from ``pretrained``).
        feature_layer: ``auto``, ``penultimate`` or ``projection`` as configured.
        seed: names random-init weights (``pretrained: none``) in the cache key.
        image_size, data_root, download: how the datasets are read.
        cache_dir: where the features (and k-means assignments) are cached.
        batch_size: images per forward pass.
        device: where the forward passes run.
    """

    backbone: nn.Module
    backbone_name: str
    pretrained: str
    checkpoint_format: str
    feature_layer: str
    seed: int
    image_size: int | None
    data_root: str
    download: bool
    cache_dir: str
    batch_size: int
    device: torch.device
    _layer: str | None = field(default=None, init=False, repr=False)

    @property
    def layer(self) -> str:
        """The resolved feature layer (``auto`` resolved once, from the checkpoint)."""
        if self._layer is None:
            self._layer = resolve_layer(self.feature_layer, self.pretrained, self.checkpoint_format)
        return self._layer

    def key(self, dataset: str) -> dict[str, Any]:
        """The feature-cache key of ``dataset``'s train part."""
        if self.pretrained in ("none", ""):
            weights = f"random-init-seed{self.seed}"
        else:
            weights = checkpoint_digest(self.pretrained)
        return {
            "checkpoint_sha256": weights,
            "checkpoint_format": self.checkpoint_format,
            "backbone": self.backbone_name,
            "dataset": dataset,
            "split": "train",
            "transform": "eval",
            "image_size": resolve_info(dataset, self.image_size).image_size,
            "layer": self.layer,
        }

    def model(self) -> nn.Module:
        """The frozen map image → selection features: the backbone, then the MoCo head if asked."""
        backbone = self.backbone
        if self.layer == "penultimate":
            return backbone
        head = projection_head(
            self.pretrained,
            self.checkpoint_format,
            self.feature_layer,
            self.backbone_name,
            backbone.num_features,
        )
        model = nn.Sequential(backbone, head.to(self.device))
        model.train(backbone.training)  # extract_features restores this mode on every child
        return model

    def features(self, dataset: str) -> tuple[np.ndarray, np.ndarray]:
        """(features, labels) of every train-part image of ``dataset``, in index order."""
        info = resolve_info(dataset, self.image_size)
        loaded = load_dataset_cached(dataset, self.data_root, self.download)
        ds = ViewDataset(loaded.train, np.arange(len(loaded.train)), build_view(info, "eval"))

        def compute() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            feats, labels = extract_features(
                self.model(), _Pairs(ds), batch_size=self.batch_size, device=self.device
            )
            return np.arange(len(ds), dtype=np.int64), feats, labels

        ids, feats, labels = cached_features(self.cache_dir, self.key(dataset), compute)
        assert np.array_equal(ids, np.arange(len(ds))), f"feature cache of {dataset} is out of order"
        return feats, labels

    def clusters(self, feats: np.ndarray, dataset: str, num_clusters: int, *, seed: int) -> np.ndarray:
        """Cosine k-means assignment of every image of ``dataset`` (cached beside the features)."""
        if num_clusters > len(feats):
            raise ConfigError(
                "num_clusters", num_clusters, f"must be <= the {len(feats)} images of {dataset}"
            )
        key = {**self.key(dataset), "kmeans": num_clusters, "kmeans_seed": seed}

        def compute() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            centroids, assign = cluster_units(feats, num_clusters, seed=seed)
            unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
            cos = np.sum(unit * centroids[assign], axis=1, keepdims=True)  # fit quality, for inspection
            return np.arange(len(feats), dtype=np.int64), cos.astype(np.float32), assign

        return cached_features(self.cache_dir, key, compute)[2]


def true_source_classes(true_units: Sequence[int], source_dataset: str, dataset: str) -> np.ndarray | None:
    """The source classes that truly match ``dataset``: ``true_units`` or the registered mapping."""
    if true_units:
        return np.unique(np.asarray(true_units, dtype=np.int64))
    known = true_matches(source_dataset, dataset)
    if known is None:
        return None
    return np.unique(np.asarray([s for v in known.values() for s in v], dtype=np.int64))


@dataclass(frozen=True)
class SourceSelection:
    """What :func:`select_source_units` chose.

    Attributes:
        selection: the selection rule (``uot``, ``greedy_ot``, ``random``, ``label``).
        units: ``classes`` or ``clusters``.
        unit_ids: every (non-empty) source unit id, shape (num_units,).
        chosen: the selected unit ids, in selection order.
        scores: one score per ``unit_ids`` entry (UOT / Greedy-OT), else None.
        members: source train-part indices of the chosen units' images (after ``subsample``).
        true_units: the truly matching source classes, if known.
        metrics: ``selection/k``, ``selection/num_units``, ``selection/num_images`` and, when
            the true units are known, ``selection/recall`` and ``selection/precision``.
    """

    selection: str
    units: str
    unit_ids: np.ndarray
    chosen: np.ndarray
    scores: np.ndarray | None
    members: np.ndarray
    true_units: np.ndarray | None
    metrics: dict[str, float]

    def record(self) -> dict[str, Any]:
        """The JSON-ready record (``selection.json``)."""
        return {
            "selection": self.selection,
            "units": self.units,
            "selected_units": [int(u) for u in self.chosen],
            "scores": None
            if self.scores is None
            else {int(u): float(s) for u, s in zip(self.unit_ids, self.scores, strict=True)},
            "true_units": None if self.true_units is None else [int(u) for u in self.true_units],
            **dict(self.metrics),
        }


def select_source_units(
    features: FeatureSource,
    *,
    selection: str,
    source_dataset: str,
    dataset: str,
    source_labels: bool,
    k: int,
    num_clusters: int,
    eps: float,
    tau1: float,
    tau2: float,
    eps_c: float,
    cost: str,
    true_units: Sequence[int],
    target_rows: np.ndarray,
    subsample: float | None,
    seed: int,
) -> SourceSelection:
    """Split the source into units, score them against the target classes and take the top ``k``.

    Args:
        features: the feature extractor (used for UOT / Greedy-OT and for k-means units).
        selection: ``uot``, ``greedy_ot``, ``random`` or ``label`` (``k`` is ignored).
        source_dataset, dataset: the pre-training and the target dataset.
        source_labels: classes as units (True) or cosine k-means clusters (False).
        k: number of units to select.
        num_clusters: K of the k-means without labels.
        eps, tau1, tau2, eps_c: UOT's parameters (:func:`ftsweep.selection.uot_scores`).
        cost: ground cost, ``l2`` or ``cosine``.
        true_units: the truly matching source units (empty = the registered mapping, if any).
        target_rows: the target train-part rows selection may look at (the labeled split).
        subsample, seed: :func:`ftsweep.data.reuse.unit_members` of the chosen units.

    Raises:
        ConfigError: ``k`` exceeds the units found, ``num_clusters`` exceeds the source images,
            or the feature layer cannot be built from the checkpoint.
    """
    src_info = resolve_info(source_dataset, features.image_size)
    src = load_dataset_cached(source_dataset, features.data_root, features.download)
    src_classes = np.asarray(src.train_targets, dtype=np.int64)
    need_features = selection in ("uot", "greedy_ot") or not source_labels

    scores = None
    if need_features:
        src_feats, _ = features.features(source_dataset)
    if source_labels:
        units_of_image = src_classes
    else:
        units_of_image = features.clusters(src_feats, source_dataset, num_clusters, seed=seed)
    if need_features:
        src_means, unit_ids = class_means(src_feats, units_of_image)
    else:
        unit_ids = np.unique(units_of_image)
    num_units = len(unit_ids)
    kind = "classes" if source_labels else "non-empty k-means clusters"
    if selection != "label" and k > num_units:
        raise ConfigError("k", k, f"must be <= the {num_units} {kind} of {source_dataset}")

    if selection in ("uot", "greedy_ot"):
        tgt_feats, tgt_labels = features.features(dataset)
        tgt_means, _ = class_means(tgt_feats[target_rows], tgt_labels[target_rows])
        if selection == "uot":
            scores = uot_scores(src_means, tgt_means, eps=eps, tau1=tau1, tau2=tau2, eps_c=eps_c, cost=cost)
        else:
            scores = greedy_ot_scores(src_means, tgt_means, metric=cost)  # type: ignore[arg-type]
        chosen = unit_ids[select(scores, k)]
    elif selection == "random":
        chosen = unit_ids[random_selection(num_units, k, seed=seed)]
    else:  # label
        true = true_source_classes(true_units, source_dataset, dataset)
        assert true is not None  # checked by the config
        chosen = label_selection(true, num_source_units=src_info.num_classes)

    members = unit_members(units_of_image, chosen, subsample=subsample, seed=seed)
    metrics = {
        "selection/k": float(len(chosen)),
        "selection/num_units": float(num_units),
        "selection/num_images": float(len(members)),
    }
    true = true_source_classes(true_units, source_dataset, dataset)
    if true is not None:
        if source_labels:
            matching = true
        else:  # a cluster truly matches when most of its images come from a matching class
            matching = np.array(
                [u for u in unit_ids if np.isin(src_classes[units_of_image == u], true).mean() > 0.5],
                dtype=np.int64,
            )
        if len(matching):
            metrics["selection/recall"] = recall_rate(chosen, matching)
        metrics["selection/precision"] = float(np.isin(src_classes[members], true).mean())
    return SourceSelection(
        selection=selection,
        units="classes" if source_labels else "clusters",
        unit_ids=unit_ids,
        chosen=chosen,
        scores=scores,
        members=members,
        true_units=true,
        metrics=metrics,
    )
