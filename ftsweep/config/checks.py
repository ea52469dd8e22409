"""Checks of a job's values that would otherwise fail on the cluster, run before Ray starts.

Each check raises one :class:`~ftsweep.config.ConfigError` (field, value, what is allowed);
:func:`check_job` runs them all on a job's fixed values with the config class's defaults for the
rest. ``source`` maps a config key to the spec field it came from (``spec.pretrained``,
``methods[0].config.batch_size``), which becomes the error's field (a ``spec.`` prefix dropped).

- :func:`check_dataset_files`: the files a registered dataset's loader needs exist under
  ``data_root`` (``DatasetInfo.files``), or ``download: true`` will fetch them; image folders are
  checked by ``DataConfig`` itself (:mod:`ftsweep.data.folder`).
- :func:`check_checkpoint`: a ``pretrained`` file (or named weights, resolved into the cache and
  hash-checked) loads with ``torch.load(..., weights_only=True)`` and its remapped keys and shapes
  fit the backbone, compared with the backbone built on the ``meta`` device (no weights built).
- :func:`check_positive_pairs`: a supervised contrastive term can form positive pairs: the
  expected share of anchors with at least one positive in a batch (:func:`positive_share`) is at
  least one half.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftsweep.config.base import BaseConfig
from ftsweep.config.errors import ConfigError

__all__ = [
    "CONTRASTIVE",
    "MIN_POSITIVE_SHARE",
    "Contrastive",
    "check_checkpoint",
    "check_dataset_files",
    "check_fewshot_episodes",
    "check_image_size",
    "check_job",
    "check_positive_pairs",
    "positive_share",
]

#: the smallest expected share of anchors with at least one positive a batch may have
MIN_POSITIVE_SHARE = 0.5


@dataclass(frozen=True)
class Contrastive:
    """How a method's supervised contrastive term forms positives.

    Attributes:
        views: augmented views per image in the contrastive batch; with two or more, the other
            views of an anchor's own image carry its label and are positives.
        active: whether the term is on for these config values (its weight > 0 …).
    """

    views: int
    active: Callable[[Mapping[str, Any]], bool]


#: Methods whose loss has a SupCon-style term over labels (read from each method's
#: ``training_step``): ``scl`` (one view, λ·SupCon), ``coin`` (one view; stage 1 is SupCon only),
#: ``core_tuning`` (one view; hard positives are mixed from a same-label partner, so an anchor
#: without one gets none), ``schane`` (two AutoAugment views of every image, positives by label
#: over all 2B views; ``ce_simclr`` pairs the views, ``ce`` has no contrastive term).
CONTRASTIVE: dict[str, Contrastive] = {
    "scl": Contrastive(1, lambda v: v["lambda_"] > 0),
    "coin": Contrastive(1, lambda v: True),
    "core_tuning": Contrastive(1, lambda v: v["eta"] > 0),
    "schane": Contrastive(2, lambda v: v["objective"] in ("schane", "ce_supcon") and v["lambda_"] > 0),
}


def _field(source: Mapping[str, str], key: str) -> str:
    return source.get(key, key).removeprefix("spec.")


def positive_share(
    batch_size: int, num_classes: int, views: int = 1, per_class: float | None = None
) -> float:
    """Expected share of anchors that have at least one positive in a batch.

    Every anchor is one of ``batch_size * views`` views. With ``views >= 2`` the other views of
    its own image are positives, so the share is 1. With one view, the positives are the other
    images of its class in the batch:

    - ``per_class`` given (a balanced label budget of ``L`` images per class, ``N = L·C``): the
      batch is ``b = min(B, N)`` images drawn without replacement, so
      ``P = 1 − C(N − L, b − 1) / C(N − 1, b − 1) = 1 − Π_{j=0}^{b−2} (N − L − j) / (N − 1 − j)``;
    - else (a large pool, classes uniform): ``P = 1 − (1 − 1/C)^(B − 1)``.

    Args:
        batch_size: images per step B.
        num_classes: C.
        views: views per image v.
        per_class: labelled images per class L, or None for an unbudgeted (large) pool.
    """
    if views >= 2:
        return 1.0
    if num_classes <= 1:
        return 1.0 if batch_size > 1 else 0.0
    if per_class is None:
        return 1.0 - (1.0 - 1.0 / num_classes) ** (batch_size - 1)
    n = int(round(per_class * num_classes))
    per = int(round(per_class))
    b = min(batch_size, n)
    none = 1.0
    for j in range(b - 1):
        none *= max(n - per - j, 0) / (n - 1 - j)
    return 1.0 - none


def check_positive_pairs(
    method: str,
    values: Mapping[str, Any],
    num_classes: int,
    source: Mapping[str, str] | None = None,
) -> None:
    """Refuse a batch size at which fewer than half the anchors of a contrastive method's batch
    can have a positive (a SupCon term of 0 for most anchors; exactly 0 at ``batch_size: 1``)."""
    rule = CONTRASTIVE.get(method)
    if rule is None or not rule.active(values):
        return
    source = source or {}
    per_class = None
    if values.get("labels_per_class") is not None:
        per_class = float(values["labels_per_class"])
    elif values.get("num_labels") is not None:
        per_class = values["num_labels"] / num_classes
    batch = int(values["batch_size"])
    share = positive_share(batch, num_classes, rule.views, per_class)
    if share >= MIN_POSITIVE_SHARE:
        return
    need = next(
        (
            b
            for b in range(batch + 1, 1 << 16)
            if positive_share(b, num_classes, rule.views, per_class) >= 0.5
        ),
        None,
    )
    budget = f", {per_class:g} labelled images per class" if per_class is not None else ""
    raise ConfigError(
        _field(source, "batch_size"),
        batch,
        f"{method}'s contrastive term needs positive pairs: with {num_classes} classes{budget} and "
        f"{rule.views} view(s) per image only {share:.0%} of the anchors of a batch have a positive "
        f"(expected); allowed: a batch size giving at least {MIN_POSITIVE_SHARE:.0%}"
        + (f" (>= {need})" if need is not None else ""),
    )


def check_dataset_files(
    dataset: str,
    data_root: str,
    download: bool,
    source: Mapping[str, str] | None = None,
    key: str = "dataset",
    download_hint: str = "set download: true",
) -> None:
    """The files ``dataset``'s loader needs exist under ``data_root`` (or will be downloaded);
    ``key`` is the config field that names it (``dataset``, ``source_dataset``);
    ``download_hint`` how the caller asks for a download (``ftsweep pretrain``: ``--download``)."""
    from ftsweep.data import get_dataset_info, is_folder_dataset

    if is_folder_dataset(dataset):  # DataConfig.validate scanned its layout; now every header
        from ftsweep.data import unreadable_images

        bad = unreadable_images(dataset)
        if bad:
            more = f" ({len(bad)} unreadable images; the next: {', '.join(p for p, _ in bad[1:4])})"
            raise ConfigError(
                _field(source or {}, key),
                dataset,
                f"image {bad[0][0]} cannot be read ({bad[0][1]}){more if len(bad) > 1 else ''}; "
                "remove or replace it",
            )
        return
    info = get_dataset_info(dataset)
    missing = [f for f in info.files if not os.path.exists(os.path.join(data_root, f))]
    if download and info.downloadable:
        return  # fetched (again, where a file fails its checksum) before Ray starts: fetch_datasets
    if not missing:
        from ftsweep.data.catalog import corrupt_files

        bad = corrupt_files(dataset, data_root)
        if bad:
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise ConfigError(
                _field(source or {}, key),
                dataset,
                f"dataset file {bad[0][0]} fails torchvision's integrity check ({bad[0][1]}){more}; "
                f"replace the files, or remove them and {download_hint}",
            )
        return
    expected = ", ".join(str(Path(data_root) / f) for f in missing)
    how = (
        f"{download_hint} to let torchvision fetch it, or place the files there"
        if info.downloadable
        else "it cannot be downloaded automatically; place the files there (see ftsweep.data.catalog)"
    )
    raise ConfigError(
        _field(source or {}, key),
        dataset,
        f"dataset files not found: expected {expected} (data_root {data_root!r}); {how}",
    )


def check_checkpoint(
    backbone: str,
    pretrained: str,
    checkpoint_format: str = "auto",
    source: Mapping[str, str] | None = None,
    *,
    download: bool = True,
) -> None:
    """A ``pretrained`` file or name loads (``weights_only=True``) and fits ``backbone``; the
    backbone is built on the ``meta`` device. ``auto``/``none`` pass (checked elsewhere)."""
    from ftsweep.backbones import (
        CheckpointError,
        check_backbone_weights,
        check_timm_weights,
        is_named_weights,
        resolve_weights,
    )

    if pretrained in ("auto", "none", ""):
        return
    field = _field(source or {}, "pretrained")
    path = Path(pretrained).expanduser()
    fmt = checkpoint_format
    if is_named_weights(pretrained) and not path.is_file():
        try:
            resolved = resolve_weights(pretrained, backbone, download=download)
        except ConfigError as err:
            raise ConfigError(field, err.value, err.allowed) from None
        if resolved.via_timm:  # timm's own weights for its architecture: read and fitted too
            try:
                check_timm_weights(backbone, resolved.path)
            except CheckpointError as err:
                raise ConfigError(field, pretrained, str(err)) from None
            return
        path, fmt = Path(resolved.path), resolved.format if checkpoint_format == "auto" else checkpoint_format
    elif not path.is_file():
        from ftsweep.backbones import list_weights

        raise ConfigError(
            field,
            pretrained,
            f"no such checkpoint file; allowed: an existing file, auto, none, {', '.join(list_weights())}",
        )
    try:
        check_backbone_weights(backbone, path, format=fmt)
    except (CheckpointError, FileNotFoundError) as err:
        raise ConfigError(field, pretrained, str(err)) from None


def check_backbone_name(backbone: Any, source: Mapping[str, str]) -> None:
    """``backbone`` names a registered backbone or a timm model (wherever the spec gave it: the
    top level, ``config:``, a search space, ``smoke:``)."""
    from ftsweep.backbones import is_known_backbone

    if not (isinstance(backbone, str) and is_known_backbone(backbone)):
        raise ConfigError(
            _field(source, "backbone"),
            backbone,
            "must be small_cnn, torchvision.resnet18/34/50/101/152 or a timm model name "
            "(with a tag: resnet50.a1_in1k)",
        )


def check_stage1(cfg: Any, source: Mapping[str, str], memo: set, download_weights: bool = True) -> None:
    """A stage-2 config's ``stage1:`` (target pretraining before the trial): its config builds,
    its dataset's files exist and its ``pretrained`` checkpoint loads and fits the backbone —
    what the shared stage-1 build would otherwise find out on the cluster."""
    from ftsweep.methods.stage2 import stage1_config

    where = _field(source, "stage1")
    try:
        s1 = stage1_config(cfg)
    except ConfigError as err:
        name = err.field.removeprefix("stage1").lstrip(".")
        raise ConfigError(f"{where}.{name}" if name else where, err.value, err.allowed) from None
    sub = {"dataset": f"{where}.dataset", "pretrained": f"{where}.pretrained"}
    files = ("files", s1.dataset, s1.data_root, False)
    if files not in memo:
        check_dataset_files(s1.dataset, s1.data_root, False, sub, "dataset")
        memo.add(files)
    ckpt = ("checkpoint", s1.backbone, s1.pretrained, s1.checkpoint_format)
    if ckpt not in memo:
        check_checkpoint(s1.backbone, s1.pretrained, s1.checkpoint_format, sub, download=download_weights)
        memo.add(ckpt)


#: the config fields an exact split check depends on (``ftsweep.plan.split_sizes``); the seed
#: picks which images, not how many per class
SPLIT_FIELDS = (
    "dataset",
    "data_root",
    "val_fraction",
    "labels_per_class",
    "num_labels",
    "subsample",
    "long_tail_ratio",
    "val_labels_per_class",
)

#: the config fields the few-shot episode check depends on (:func:`check_fewshot_episodes`)
FEWSHOT_FIELDS = ("dataset", "data_root", "fewshot_split", "fewshot_ways", "fewshot_shots", "fewshot_query")


def check_exact_split(cfg: Any, source: Mapping[str, str]) -> None:
    """The splits of a dataset whose labels are at hand (``ftsweep.data.exact_labels``: embedded
    data, image folders) drawn exactly as a trial will (``ftsweep.plan.split_sizes``): a label
    budget can exceed a class's images after the validation split, and a method that learns from
    unlabeled images (``needs_unlabeled``) needs some left outside the budget."""
    from ftsweep.data import SplitError
    from ftsweep.plan import split_sizes

    key = "num_labels" if cfg.num_labels is not None else "labels_per_class"
    value = cfg.num_labels if cfg.num_labels is not None else cfg.labels_per_class
    try:
        sizes = split_sizes(cfg)
    except SplitError as err:
        raise ConfigError(_field(source, key), value, str(err)) from None
    vlpc = getattr(cfg, "val_labels_per_class", None)
    if vlpc is not None and vlpc > sizes["val_fewest"]:  # limit_val would keep fewer, unsaid
        from ftsweep.data import is_folder_dataset

        own = is_folder_dataset(cfg.dataset) and os.path.isdir(
            os.path.join(os.path.expanduser(cfg.dataset), "val")
        )
        where = "val/ part" if own else f"validation split (val_fraction {cfg.val_fraction})"
        raise ConfigError(
            _field(source, "val_labels_per_class"),
            vlpc,
            f"the {where} of {cfg.dataset} has only {sizes['val_fewest']} images in its smallest class; "
            f"allowed: at most {sizes['val_fewest']}" + ("" if own else ", or a larger val_fraction"),
        )
    if getattr(cfg, "needs_unlabeled", False) and value is not None and sizes["unlabeled"] == 0:
        raise ConfigError(
            _field(source, key),
            value,
            f"leaves no unlabeled image in {cfg.dataset} for {cfg.method} (the budget takes the "
            f"whole train part after the validation split, {sizes['labeled']} images)",
        )


def check_fewshot_episodes(cfg: Any, source: Mapping[str, str]) -> None:
    """Few-shot episodes drawn from the test split (``fewshot_split: test``, or ``auto`` on a
    dataset without novel classes) can be formed: ``fewshot_ways`` classes with ``fewshot_shots``
    + ``fewshot_query`` test images each (``ftsweep.metrics.fewshot_eval``). Exact for an embedded
    dataset (its test labels load at once), a bound from ``num_test`` otherwise; a
    ``max_eval_batches`` cap is not counted."""
    import numpy as np

    from ftsweep.data import get_dataset_info, load_dataset

    info = get_dataset_info(cfg.dataset)
    novel = cfg.fewshot_split == "novel" or (cfg.fewshot_split == "auto" and info.num_novel_classes)
    if not cfg.fewshot_ways or novel:
        return
    shots, ways = max(cfg.fewshot_shots), max(cfg.fewshot_ways)
    need = shots + cfg.fewshot_query
    if info.offline:
        counts = np.bincount(np.asarray(load_dataset(cfg.dataset, cfg.data_root).test_targets))
        enough, bound = int((counts >= need).sum()), ""
    elif info.num_test is not None:
        enough, bound = min(info.num_classes, info.num_test // need), "at most "
    else:
        return
    if ways > enough:
        raise ConfigError(
            _field(source, "fewshot_shots"),
            shots,
            f"{ways}-way episodes of {shots} shots + {cfg.fewshot_query} queries (fewshot_query) need "
            f"{ways} classes with {need} test images each; {cfg.dataset}'s test split has "
            f"{bound}{enough} classes with that many",
        )


def check_image_size(
    backbone: str, size: int, source: Mapping[str, str], *, field: str = "image_size", value: Any = None
) -> None:
    """A backbone built for one input size (a timm ViT / Swin: ``patch_embed.strict_img_size``)
    gets images of that side: the trial's views are ``size`` × ``size`` (``image_size``, else
    the dataset's own), and the first batch would fail otherwise. Built on the ``meta`` device.
    ``field`` / ``value``: what the error names (``ftsweep pretrain``, which has no image size:
    ``--backbone``)."""
    from ftsweep.backbones import meta_backbone

    model = meta_backbone(backbone)
    embed = getattr(model, "patch_embed", None)
    fixed = getattr(embed, "img_size", None) if getattr(embed, "strict_img_size", False) else None
    if fixed is not None and tuple(fixed) != (size, size):
        fix = f"set image_size: {fixed[0]}" if field == "image_size" else f"the images are {size}×{size}"
        raise ConfigError(
            _field(source, field),
            size if value is None else value,
            f"{backbone} takes {fixed[0]}×{fixed[1]} images only (its patch embedding is built for "
            f"that size); {fix}",
        )


def check_job(
    config_cls: type[BaseConfig],
    fixed: Mapping[str, Any],
    source: Mapping[str, str],
    *,
    download_weights: bool = True,
    passed: set | None = None,
) -> BaseConfig:
    """Run every check on one configuration of a job: ``fixed`` over ``config_cls``'s defaults.

    Args:
        config_cls: the method's config dataclass (``method`` class attribute, data and loop fields).
        fixed: the configuration's values: a job's fixed values, with one trial's searched
            values over them (``ftsweep.runner.check_jobs``); keys left out take the defaults.
        source: config key → spec field it came from, for the error's field name.
        download_weights: fetch missing named weights into the cache (False: only look there).
        passed: the dataset-file, exact-split and checkpoint checks passed so far, by their
            arguments (added to here), so that the configurations of a grid load each checkpoint
            and split each embedded dataset once. (The backbone's name is checked by
            ``ftsweep.runner.check_jobs`` before the checkpoint rules.)

    Returns:
        The configuration, built.

    Raises:
        ConfigError: the first failing check's, on the spec field the value came from.
    """
    names = set(config_cls.field_names())
    try:
        cfg = config_cls.from_dict({k: v for k, v in fixed.items() if k in names})
    except ConfigError as err:
        raise ConfigError(_field(source, err.field), err.value, err.allowed) from None
    values = cfg.to_dict()
    memo = passed if passed is not None else set()
    if "dataset" in values:
        from ftsweep.data import DATASET_FIELDS, exact_labels, get_dataset_info

        for key in (k for k in DATASET_FIELDS if k in values):
            args = (values[key], values["data_root"], bool(values.get("download")))
            if ("files", *args) not in memo:
                check_dataset_files(*args, source, key)
                memo.add(("files", *args))
        info = get_dataset_info(values["dataset"])
        num_classes = info.num_classes
        if exact_labels(values["dataset"]) and "labels_per_class" in values:
            unlabeled = getattr(config_cls, "needs_unlabeled", False)
            split = ("split", unlabeled, *(values.get(k) for k in SPLIT_FIELDS))
            if split not in memo:
                check_exact_split(cfg, source)
                memo.add(split)
        if "batch_size" in values:
            check_positive_pairs(getattr(config_cls, "method", ""), values, num_classes, source)
        if values.get("fewshot_ways"):
            episodes = ("fewshot", *(values[k] for k in FEWSHOT_FIELDS))
            if episodes not in memo:
                check_fewshot_episodes(cfg, source)
                memo.add(episodes)
        if "backbone" in values and "image_size" in values:
            side = values["image_size"] or info.image_size
            if ("image_size", values["backbone"], side) not in memo:
                check_image_size(values["backbone"], side, source)
                memo.add(("image_size", values["backbone"], side))
    if values.get("stage1") is not None:
        check_stage1(cfg, source, memo, download_weights)
    if "backbone" in values and "pretrained" in values:
        ckpt = (values["backbone"], values["pretrained"], values.get("checkpoint_format", "auto"))
        if ("checkpoint", *ckpt) not in memo:
            check_checkpoint(*ckpt, source, download=download_weights)
            memo.add(("checkpoint", *ckpt))
        head = ("head", *ckpt, values.get("feature_layer"), values.get("selection"))
        if "feature_layer" in values and head not in memo:
            check_projection_head(values, source, download=download_weights)
            memo.add(head)
    return cfg


def check_projection_head(
    values: Mapping[str, Any], source: Mapping[str, str], *, download: bool = True
) -> None:
    """Selection features from a projection head (UOT selection's ``feature_layer``:
    ``projection``, or ``auto`` on a MoCo checkpoint): the checkpoint holds one, and it takes the
    backbone's features — else every trial failed when it built its selection features."""
    if values.get("selection", "none") == "none" or values["pretrained"] in ("auto", "none", ""):
        return  # no selection features; auto / none: refused with projection by the config
    if values["feature_layer"] not in ("auto", "projection"):
        return
    from ftsweep.backbones import meta_backbone, weights_file
    from ftsweep.selection.pipeline import projection_head, resolve_layer

    path, fmt = weights_file(
        values["pretrained"], values["backbone"], format=values["checkpoint_format"], download=download
    )
    if resolve_layer(values["feature_layer"], path, fmt) != "projection":
        return
    width = meta_backbone(values["backbone"]).num_features
    try:
        projection_head(path, fmt, values["feature_layer"], values["backbone"], width)
    except ConfigError as err:
        raise ConfigError(_field(source, err.field), err.value, err.allowed) from None
