"""Fine-tuning on target data plus selected pre-training data (UOT paper, Sec. 3.2–3.3).

At setup the selection pipeline (:func:`ftsweep.selection.pipeline.select_source_units`)
extracts features of the source (pre-training) and target training images with the pre-trained
model — the penultimate (pooled backbone) features, or for a MoCo checkpoint the output of its
projection head (``feature_layer``; Sec. 4.1 uses MoCo-v2's 128-d FC output) — Parquet-cached
by checkpoint digest, dataset, transform, crop size (``image_size``) and layer under
``cache_dir``; the source is split into units — its classes when ``source_labels``, cosine
k-means clusters otherwise — and ``k`` units are selected by UOT (Eq. 5), Greedy-OT, random or
label-based selection. Training then draws, at every step, a target batch and a batch of the
same size from the selected source images:

- labeled reuse (Eq. 6): two heads on one backbone, loss = CE(target head) + λ·CE(source head
  over all source classes);
- unlabeled reuse (Eq. 7): one head; each selected image gets a weak and a strong view, the
  weak view's softmax (no temperature, no threshold, no gradient) is the soft label of the
  strong view: loss = CE(target) + λ·softCE(strong, softmax(weak)).

``selection: none`` is plain fine-tuning, the baseline row of Table 1. The selected unit ids,
their scores and the recall go to ``selection.json`` in the trial directory (``logdir``); ``step()`` reports
``selection/k``, ``selection/num_units``, ``selection/num_images`` and, when the true matching
units are known (``true_units`` or a registered pair such as digits_source → digits_target),
``selection/recall`` (Table 4's recall rate) and ``selection/precision`` (share of selected
images whose class truly matches).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ftsweep.backbones import PROJECTION_FORMATS, classifier_head, weights_file
from ftsweep.config import ConfigError, TrainConfig, check
from ftsweep.data import ViewDataset, build_views, get_dataset_info, load_dataset_cached, resolve_info
from ftsweep.data.reuse import true_matches
from ftsweep.engine import StepOutput, cycle, make_loader
from ftsweep.losses import soft_cross_entropy
from ftsweep.methods.base import FineTuner, resolve_trial_config
from ftsweep.selection import FEATURE_LAYERS
from ftsweep.selection.pipeline import (
    SELECTIONS,
    FeatureSource,
    select_source_units,
    true_source_classes,
)

__all__ = ["HEAD_INITS", "HEAD_INIT_STD", "SELECTIONS", "UotSelectionConfig", "UotSelectionMethod"]

#: ``head_init`` values: the public code's normal draw, or PyTorch's ``nn.Linear`` default
HEAD_INITS = ("normal", "default")
#: the public code's head std (``fine_tune_top1.py``: √(2/2048), whatever the backbone's width)
HEAD_INIT_STD = math.sqrt(2.0 / 2048.0)


@dataclass(frozen=True)
class UotSelectionConfig(TrainConfig):
    """Joint fine-tuning on the target and selected source data.

    Defaults are the paper's (Sec. 4.1): SGD Nesterov, 100 epochs, lr ÷10 at epochs 60 and 80,
    batch 256 per stream, k = 100 classes, UOT with ε = 1, τ1 = 1, τ2 = 100, ε_c = 0.01,
    K = 2000 clusters without labels, and the test accuracy of the last epoch (``select:
    last``: the epochs are fixed, App. A retrains the chosen setting and reports its end; see
    docs/deviations.md). The data defaults are the offline digits pair.

    Attributes:
        source_dataset: the pre-training set to reuse (``imagenet`` in the paper): a registered
            name or an image folder (``./my_source``, laid out as ``dataset``'s, see
            :mod:`ftsweep.data.folder`).
        source_labels: use the source labels (classes as units, Eq. 6) or not (k-means
            clusters as units, Eq. 7).
        selection: ``none`` (plain fine-tuning), ``uot``, ``greedy_ot``, ``random`` or
            ``label`` (the true matching classes; ``k`` is then ignored).
        k: number of selected units (classes or clusters); must not exceed the units. The
            default 5 fits the default source (``digits_source``, 30 classes); the paper's 100
            (of ImageNet's 1000) is set by the paper specs.
        num_clusters: K of the cosine k-means when ``source_labels`` is false (the paper's
            2000 on ImageNet); must not exceed the source's train images.
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
        joint_forward: one backbone pass over the step's target and reused images together
            (their views too), so BatchNorm normalises them with one set of batch statistics,
            as the public code does (``fine_tune_top1.py``: ``interleave(cat(...))``); false:
            a pass per batch. Images of different sizes always take a pass each.
        head_init: ``normal``: both heads' weights drawn from N(0, 2/2048) (std √(2/2048), the
            public code's constant for every backbone) and zero biases, as the public code;
            ``default``: PyTorch's ``nn.Linear`` initialisation.
    """

    method: ClassVar[str] = "uot_selection"

    dataset: str = "digits_target"
    source_dataset: str = "digits_source"
    source_labels: bool = True
    selection: str = "uot"
    k: int = 5
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
    joint_forward: bool = True
    head_init: str = "normal"
    batch_size: int = 256
    epochs: int = 100
    schedule: str = "step"
    milestones: tuple[int, ...] = (60, 80)
    weight_decay: float = 1e-4
    select: str = "last"
    weight_decay_norm_bias: bool = True  # the public code's SGD decays every parameter

    def validate(self) -> None:
        super().validate()
        from ftsweep.data import validate_dataset

        validate_dataset(self.source_dataset, "source_dataset")  # a registered name or an image folder
        check(self.selection, "selection", choices=SELECTIONS)
        check(self.head_init, "head_init", choices=HEAD_INITS)
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
        source_classes = get_dataset_info(self.source_dataset).num_classes
        for u in self.true_units:
            if not 0 <= u < source_classes:
                raise ConfigError(
                    "true_units",
                    u,
                    f"must be a class id of {self.source_dataset}: in [0, {source_classes - 1}]",
                )
        if len(set(self.true_units)) < len(self.true_units):
            raise ConfigError("true_units", self.true_units, "must not repeat a source class")
        if self.selection in ("none", "label"):
            pass
        elif self.source_labels:
            n = get_dataset_info(self.source_dataset).num_classes
            if self.k > n:
                raise ConfigError("k", self.k, f"must be <= the {n} classes of {self.source_dataset}")
        else:
            images = get_dataset_info(self.source_dataset).num_train
            if images is not None and self.num_clusters > images:
                raise ConfigError(
                    "num_clusters",
                    self.num_clusters,
                    f"must be <= the {images} train images of {self.source_dataset} (k-means clusters them)",
                )
            if self.k > self.num_clusters:
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


class UotSelectionMethod(FineTuner):
    """Target fine-tuning with a stream of selected pre-training data (Eq. 6 / Eq. 7)."""

    config_cls = UotSelectionConfig
    cfg: UotSelectionConfig

    @classmethod
    def upstream_key(cls, config: Mapping[str, Any]) -> str | None:
        """The source and target feature caches (and the selection they feed) depend on the
        checkpoint, the backbone, the layer, the image size and the two datasets."""
        cfg = cls.config_cls.from_dict(resolve_trial_config(config))
        if cfg.selection == "none":
            return None
        parts = (cfg.pretrained, cfg.checkpoint_format, cfg.backbone, cfg.feature_layer, cfg.image_size)
        return "features:" + "|".join(map(str, (*parts, cfg.source_dataset, cfg.dataset, cfg.data_root)))

    # ---- model --------------------------------------------------------------------------
    @property
    def reuses(self) -> bool:
        return self.cfg.selection != "none"

    def build_heads(self, num_features: int) -> dict[str, nn.Module]:
        heads = super().build_heads(num_features)
        if self.reuses and self.cfg.source_labels:
            n_src = get_dataset_info(self.cfg.source_dataset).num_classes
            heads["source_classifier"] = classifier_head(num_features, n_src)
        if self.cfg.head_init == "normal":
            for head in heads.values():
                nn.init.normal_(head.weight, mean=0.0, std=HEAD_INIT_STD)
                nn.init.zeros_(head.bias)
        return heads

    # ---- selection ----------------------------------------------------------------------
    @property
    def feature_layer(self) -> str:
        """``feature_layer`` with ``auto`` resolved from the checkpoint's format."""
        return self.feature_source.layer

    def _feature_key(self, dataset: str) -> dict[str, Any]:
        return self.feature_source.key(dataset)

    def setup_method(self) -> None:
        cfg = self.cfg
        # rebuilt by every setup: an actor may be reused with another checkpoint
        path, fmt = (
            (cfg.pretrained, cfg.checkpoint_format)
            if cfg.pretrained in ("none", "", "auto")
            else weights_file(cfg.pretrained, cfg.backbone, format=cfg.checkpoint_format)
        )  # a named value (moco_v2_800ep) is read, digested and its head built from its file
        self.feature_source = FeatureSource(
            backbone=self.model["backbone"],
            backbone_name=cfg.backbone,
            pretrained=path,
            checkpoint_format=fmt,
            feature_layer=cfg.feature_layer,
            seed=cfg.seed,
            image_size=cfg.image_size,
            data_root=cfg.data_root,
            download=cfg.download,
            cache_dir=cfg.cache_dir,
            batch_size=cfg.feature_batch_size,
            device=self.device,
        )
        self.selection: dict[str, Any] = {}
        self.selection_metrics: dict[str, float] = {}
        self.source_stream: ViewDataset | None = None
        if not self.reuses:
            return
        chosen = select_source_units(
            self.feature_source,
            selection=cfg.selection,
            source_dataset=cfg.source_dataset,
            dataset=cfg.dataset,
            source_labels=cfg.source_labels,
            k=cfg.k,
            num_clusters=cfg.num_clusters,
            eps=cfg.eps,
            tau1=cfg.tau1,
            tau2=cfg.tau2,
            eps_c=cfg.eps_c,
            cost=cfg.cost_metric,
            true_units=cfg.true_units,
            target_rows=self.data.splits.labeled,  # selection sees only the (sub-sampled) training split
            subsample=cfg.subsample,
            seed=cfg.seed,
        )
        src_info = resolve_info(cfg.source_dataset, cfg.image_size)
        src = load_dataset_cached(cfg.source_dataset, cfg.data_root, cfg.download)
        self.source_stream = ViewDataset(
            src.train,
            chosen.members,
            build_views(src_info, self.source_views(cfg)),
            hide_labels=not cfg.source_labels,
        )
        self.selection_metrics = dict(chosen.metrics)
        self.selection = chosen.record()
        self._write_selection()

    def _write_selection(self) -> None:
        if self.logdir:
            Path(self.logdir).mkdir(parents=True, exist_ok=True)
            (Path(self.logdir) / "selection.json").write_text(json.dumps(self.selection, indent=1))

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

    @classmethod
    def source_views(cls, cfg: Any) -> str | tuple[str, ...] | None:
        """A source batch of the selected images joins every target batch (:meth:`train_batches`):
        labeled (one standard view) or pseudo-labeled (a weak and a strong view, Eq. 7)."""
        if cfg.selection == "none":
            return None
        return "standard" if cfg.source_labels else ("weak", "strong")

    @classmethod
    def loss_terms(cls, cfg: Any) -> tuple[str, ...]:
        """``ce_target``, and the source term of Eq. 6 (labels) or Eq. 7 (pseudo-labels) when
        the selection reuses source data."""
        if cfg.selection == "none":
            return ("ce_target",)
        return ("ce_target", "ce_source" if cfg.source_labels else "soft_ce_source")

    @classmethod
    def logged_metrics(cls, cfg: Any) -> frozenset[str]:
        """Beside the shared ones, when source data is reused: the selection's ``selection/k``,
        ``selection/num_units`` and ``selection/num_images`` and, where the truly matching
        source classes are known, ``selection/precision`` and ``selection/recall`` (recall only
        if some unit matches: :func:`ftsweep.selection.pipeline.select_source_units`)."""
        out = super().logged_metrics(cfg)
        if cfg.selection == "none":
            return out
        names = {"selection/k", "selection/num_units", "selection/num_images"}
        if true_source_classes(cfg.true_units, cfg.source_dataset, cfg.dataset) is not None:
            names |= {"selection/precision", "selection/recall"}
        return out | names

    def training_step(self, batch: Any) -> StepOutput:
        (xt, yt, _), source = batch
        xt, yt = xt.to(self.device), yt.to(self.device)
        head = self.model["classifier"]
        if source is None:
            ce_t = F.cross_entropy(self.predict(xt), yt)
            return ce_t, {"ce_target": ce_t}
        lam = self.cfg.lambda_
        if self.cfg.source_labels:
            xs, ys, _ = source
            ft, fs = self._features([xt, xs.to(self.device)])
            ce_t = F.cross_entropy(head(ft), yt)
            ce_s = F.cross_entropy(self.model["source_classifier"](fs), ys.to(self.device))
            return ce_t + lam * ce_s, {"ce_target": ce_t, "ce_source": ce_s}
        (x_weak, x_strong), _, _ = source
        ft, fw, fs = self._features([xt, x_weak.to(self.device), x_strong.to(self.device)], targets=(1,))
        ce_t = F.cross_entropy(head(ft), yt)
        soft = F.softmax(head(fw), dim=1).detach()  # Eq. 7's target: no gradient
        sce = soft_cross_entropy(head(fs), soft)
        return ce_t + lam * sce, {"ce_target": ce_t, "soft_ce_source": sce}

    def _features(self, parts: list[torch.Tensor], targets: tuple[int, ...] = ()) -> tuple[torch.Tensor, ...]:
        """Backbone features of each batch of the step: one pass over them all (``joint_forward``,
        images of one size), else a pass each — those at ``targets`` (Eq. 7's weak view) without
        autograd, as their output is only a target."""
        backbone = self.model["backbone"]
        if self.cfg.joint_forward and all(x.shape[1:] == parts[0].shape[1:] for x in parts):
            return backbone(torch.cat(parts)).split([len(x) for x in parts])
        out = []
        for i, x in enumerate(parts):
            with torch.set_grad_enabled(torch.is_grad_enabled() and i not in targets):
                out.append(backbone(x))
        return tuple(out)


def _zip(target: Iterable, source: Iterator) -> Iterator:
    for batch in target:
        yield batch, next(source)
