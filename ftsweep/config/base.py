"""Frozen config dataclasses: the only home of every default.

``DataConfig`` (the data a run reads) and ``LoopConfig`` (the backbone and the training loop)
hold the fields, defaults and checks that every trained config shares; ``TrainConfig`` combines
them with what every fine-tuning method adds (schedule, evaluation, label budget), and each
method subclasses it with its own hyperparameters and range checks. Stage-1 target pretraining
(``ftsweep.pretrain.config.TargetPretrainConfig``) combines the same two bases. Build a
config with ``Cls.from_dict(mapping)``: an unknown key raises ``ConfigError`` with the closest
known key, a wrong type or an out-of-range value raises ``ConfigError`` naming the field.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from ftsweep.config.errors import ConfigError

#: the values of ``precision`` (LoopConfig; ``ftsweep.engine.loop.resolve_precision``)
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: eval views of large images (``TrainConfig.eval_resize``, ``DatasetInfo.eval_resize``)
EVAL_RESIZE = ("shorter", "square")

__all__ = ["EVAL_RESIZE", "BaseConfig", "DataConfig", "LoopConfig", "TrainConfig", "check"]


def check(
    value: Any,
    name: str,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    choices: Iterable[Any] | None = None,
) -> None:
    """Raise ``ConfigError`` unless ``value`` satisfies every bound given (None passes)."""
    if value is None:
        return
    if choices is not None:
        allowed = list(choices)
        if value not in allowed:
            raise ConfigError(name, value, f"must be one of {', '.join(map(str, allowed))}")
        return
    lo = f"({gt}" if gt is not None else (f"[{ge}" if ge is not None else "(-inf")
    hi = f"{lt})" if lt is not None else (f"{le}]" if le is not None else "inf)")
    ok = (
        (gt is None or value > gt)
        and (ge is None or value >= ge)
        and (lt is None or value < lt)
        and (le is None or value <= le)
    )
    if not ok:
        if hi == "inf)" and lo != "(-inf":
            msg = f"must be > {gt}" if gt is not None else f"must be >= {ge}"
        else:
            msg = f"must be in {lo}, {hi}"
        raise ConfigError(name, value, msg)


def _yaml_number_hint(value: Any) -> str:
    """YAML 1.1 reads ``1e-3`` (no dot) as a string: say how to write it as a number."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return ""
        if math.isfinite(number):
            return f" (YAML reads {value} as a string; write it with a dot: {number!r})"
    return ""


def _coerce(name: str, value: Any, tp: Any) -> Any:
    """Coerce YAML/Tune values to the annotated type (int → float, list → tuple)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(name, value, "must not be null")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(name, value, arg)
            except ConfigError as e:
                errors.append(e)
        raise errors[0]
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(name, value, "must be true or false")
    if tp is int:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or int(value) != value
        ):
            raise ConfigError(name, value, "must be an integer")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(name, value, "must be a number" + _yaml_number_hint(value))
        if not math.isfinite(value):
            raise ConfigError(name, value, "must be a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(name, value, "must be a string")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(name, value, "must be a list")
        (inner, *_) = typing.get_args(tp) or (Any,)
        return tuple(value if inner is Any else _coerce(name, v, inner) for v in value)
    return value


@dataclass(frozen=True)
class BaseConfig:
    """Base of all config dataclasses: strict ``from_dict`` and a ``validate`` hook."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Range checks; subclasses extend and call ``super().validate()``."""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Self:
        """Build from a mapping; unknown keys, wrong types and bad values raise ``ConfigError``."""
        names = cls.field_names()
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for key, value in values.items():
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ConfigError(
                    str(key),
                    value,
                    f"not a field of {cls.__name__}; {hint}allowed: {', '.join(names)}",
                )
            kwargs[key] = _coerce(key, value, hints[key])
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


def check_data_root(value: str, name: str = "data_root") -> None:
    """Raise ``ConfigError`` on ``name`` when ``value`` exists but is not a directory (a
    ``data_root``, a ``cache_dir``).

    A ``data_root`` that does not exist yet is allowed: a download makes it. One that is a file
    (``/etc/passwd``) would only fail later, when the download cannot make the directory.
    """
    if os.path.exists(value) and not os.path.isdir(value):
        what = "a file" if os.path.isfile(value) else "not a directory"
        raise ConfigError(
            name,
            value,
            f"must be a directory (or a path not made yet{', for a download' if name == 'data_root' else ''}); "
            f"{value} is {what}",
        )


@dataclass(frozen=True)
class DataConfig(BaseConfig):
    """The data a run reads: the dataset, its validation split and label budget, the crop size.

    Attributes:
        dataset: a key of ``ftsweep.data.DATASETS`` or an image-folder path (``./my_images`` with
            ``train/<class>/``, ``test/<class>/``, optional ``val/<class>/``).
        data_root: where real datasets live: a directory, or a path not made yet (a download
            makes it); a file is refused.
        val_fraction: validation split carved from train (model selection only).
        labels_per_class / num_labels: balanced label budget; the rest is the unlabeled stream.
        image_size: side of the training crop and of the evaluation centre crop; None = the
            dataset's own (``ftsweep list``).
        num_workers: DataLoader worker processes; ``auto`` = the trial's CPUs minus one
            (``ftsweep.engine.resolve_num_workers``; Ray Tune gives a trial ``OMP_NUM_THREADS`` =
            its CPU count), 0 = load in the training process.
    """

    dataset: str = "digits"
    data_root: str = "data"
    val_fraction: float = 0.1
    labels_per_class: int | None = None
    num_labels: int | None = None
    image_size: int | None = None
    num_workers: int | str = "auto"

    def validate(self) -> None:
        super().validate()
        from ftsweep.data import validate_dataset

        validate_dataset(self.dataset, "dataset")
        check_data_root(self.data_root)
        check(self.val_fraction, "val_fraction", gt=0, lt=1)
        check(self.labels_per_class, "labels_per_class", ge=1)
        check(self.num_labels, "num_labels", ge=1)
        if self.labels_per_class is not None and self.num_labels is not None:
            raise ConfigError("num_labels", self.num_labels, "give labels_per_class or num_labels, not both")
        check(self.image_size, "image_size", ge=8)
        if isinstance(self.num_workers, str):
            check(self.num_workers, "num_workers", choices=("auto",))
        else:
            check(self.num_workers, "num_workers", ge=0)


@dataclass(frozen=True)
class LoopConfig(BaseConfig):
    """The backbone and the training loop: initialisation, seed, optimiser, length, device.

    A subclass may override a default (its one home for that class) and the two class-level
    rules below.

    Attributes:
        backbone: ``small_cnn``, ``torchvision.resnet50`` or any timm model name.
        pretrained: ``auto`` (ftsweep's own self-supervised checkpoint, built once when
            missing; digits only), ``none`` (random init) or a checkpoint path.
        checkpoint_format: key-remapping rule for ``pretrained`` (see ftsweep.backbones).
        seed: drives splits, init, data order and augmentation.
        epochs: training epochs N.
        batch_size: images per step (at least ``min_batch_size``).
        optimizer: one of ``optimizers``.
        lr: base learning rate.
        momentum: optimiser momentum.
        weight_decay: L2 weight decay.
        warmup_epochs: epochs of linear warm-up (fewer than ``epochs``).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        max_train_batches: cap on batches per epoch (``--smoke``).
        cache_dir: where built artefacts shared across trials live (stage-1 checkpoints,
            feature caches); ``ftsweep run`` makes it absolute before trials start.
        precision: ``auto`` (bf16 autocast on a CUDA device that supports it, fp16 + GradScaler
            on older GPUs, fp32 on CPU), ``fp32``, ``bf16`` or ``fp16``, for training and evaluation.
        channels_last: NHWC memory format for the model and the batches; ``auto`` = on for a
            convolutional backbone on CUDA.
        gpu_augment: draw the training views on the trial's device, batched (decode and resize
            stay on the CPU workers, see ``ftsweep.data.gpu_views``; in-memory data's batched
            views run on the device); ``auto`` = on when the device is CUDA.
    """

    #: the optimisers ``optimizer`` may name, in the order the error message lists them
    optimizers: ClassVar[tuple[str, ...]] = ("sgd", "adam", "adamw", "lars")
    #: the smallest ``batch_size`` allowed
    min_batch_size: ClassVar[int] = 1

    backbone: str = "small_cnn"
    pretrained: str = "auto"
    checkpoint_format: str = "auto"
    seed: int = 0
    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: int = 0
    device: str = "auto"
    max_train_batches: int | None = None
    cache_dir: str = "results/cache"
    precision: str = "auto"
    channels_last: bool | str = "auto"
    gpu_augment: bool | str = "auto"

    def validate(self) -> None:
        super().validate()
        check(self.epochs, "epochs", ge=1)
        check(self.batch_size, "batch_size", ge=self.min_batch_size)
        check(self.optimizer, "optimizer", choices=self.optimizers)
        check(self.lr, "lr", gt=0)
        check(self.momentum, "momentum", ge=0, lt=1)
        check(self.weight_decay, "weight_decay", ge=0)
        check(self.warmup_epochs, "warmup_epochs", ge=0)
        if self.warmup_epochs >= self.epochs and self.warmup_epochs > 0:
            raise ConfigError("warmup_epochs", self.warmup_epochs, f"must be < epochs ({self.epochs})")
        if not _DEVICE.match(self.device):
            raise ConfigError("device", self.device, "must be auto, cpu, cuda, cuda:N or mps")
        check(self.max_train_batches, "max_train_batches", ge=1)
        check_data_root(self.cache_dir, "cache_dir")  # a file there fails the first build of a trial
        if not str(self.pretrained).strip():  # a template's unset variable: never random init unasked
            raise ConfigError(
                "pretrained",
                self.pretrained,
                "is empty; give a checkpoint file, named weights (ftsweep list), auto, or none for a "
                "randomly initialised backbone",
            )
        self._check_checkpoint_format()
        check(self.precision, "precision", choices=PRECISIONS)
        for name in ("channels_last", "gpu_augment"):
            if isinstance(getattr(self, name), str):
                check(getattr(self, name), name, choices=("auto",))

    def _check_checkpoint_format(self) -> None:
        """A known format; with ``pretrained: auto`` (ftsweep's own SimCLR checkpoint, keys
        ``backbone.*``) one that reads those keys."""
        from ftsweep.backbones.checkpoint import CHECKPOINT_FORMATS

        check(self.checkpoint_format, "checkpoint_format", choices=("auto", *CHECKPOINT_FORMATS))
        if self.pretrained == "auto" and self.checkpoint_format != "auto":
            reads = [n for n, f in CHECKPOINT_FORMATS.items() if "backbone." in f.prefixes]
            if self.checkpoint_format not in reads:
                raise ConfigError(
                    "checkpoint_format",
                    self.checkpoint_format,
                    f"does not read pretrained: auto (ftsweep's SimCLR checkpoint, keys backbone.*); "
                    f"use {', '.join(['auto', *reads])}",
                )


@dataclass(frozen=True)
class TrainConfig(LoopConfig, DataConfig):
    """Fields shared by every fine-tuning method: :class:`DataConfig` and :class:`LoopConfig`
    (their fields and checks are documented there), plus:

    Attributes:
        download: fetch a real dataset into ``data_root`` when missing.
        lr: base learning rate (backbone); heads use ``lr * head_lr_mult``.
        schedule: ``cosine``, ``step`` (``milestones`` epochs × ``gamma``) or ``constant``;
            ``warmup_epochs`` of linear warm-up in every case.
        subsample: fraction of each class kept; long_tail_ratio: max/min class size.
        image_size: e.g. 224 to feed 32-px CIFAR to a ViT-B/16 or to follow COIN's code
            (``RandomResizedCrop(224)``).
        resize_size: resize-then-crop: the training views (standard/weak/strong/autoaugment)
            resize to ``resize_size`` × ``resize_size`` and take a random crop of side
            ``image_size``, the eval view resizes the whole image to ``image_size`` (Core-tuning's
            code on CIFAR: 272 → 256); None = random-resized / pad crops.
        eval_resize: the eval view of images above 64 px (no ``resize_size``): ``shorter``
            resizes the shorter side to ``round(image_size / 0.875)`` (256 for 224) and takes
            the centre crop (torchvision's / timm's ImageNet protocol); ``square`` resizes the
            whole image to that side × side first (Core-tuning App. C.2: "resize images to
            256×256 and then take a 224×224 center crop"), so a wide image keeps its sides.
        early_stop_patience: end the trial once ``val/loss`` has not decreased for this many
            epochs (SCHaNe App. A.2: 10); None = train all ``epochs``. Selection stays on
            ``val/acc``.
        amp: the older switch for ``precision``, kept as an alias: None follows ``precision``;
            false with ``precision: auto`` is fp32; true is ``auto``'s mixed precision.
        select: model-selection protocol. ``best_val``: the epoch with the best ``val/acc``
            (test evaluated only when it improves); ``last``: the final epoch (test evaluated
            on it only); ``median_last_k``: the median over the last ``select_k`` epochs of
            every metric (test evaluated on those epochs only; FixMatch's "median of the last
            20 checkpoints").
        select_k: epochs the median of ``median_last_k`` spans (≤ ``epochs``).
        val_labels_per_class: keep only this many validation images per class (a labeled
            validation set no bigger than the label budget; ≤ the budget per class when one is
            given, and ≤ the validation split's smallest class, a folder's ``val/`` included);
            None = the whole ``val_fraction`` split.
        weight_decay_norm_bias: apply ``weight_decay`` to biases and normalisation parameters
            too (Core-tuning's code decays every parameter); false = exempt them.
        feature_metrics: metrics of the validation backbone features logged at the last epoch
            for any method, e.g. ``[s_dbw]`` → ``val/s_dbw`` (COIN Table 2).
    """

    method: ClassVar[str] = "base"

    download: bool = False
    eval_batch_size: int = 512
    head_lr_mult: float = 1.0
    resize_size: int | None = None
    eval_resize: str = "shorter"
    nesterov: bool = True
    schedule: str = "cosine"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    grad_accum: int = 1
    grad_clip: float | None = None
    subsample: float | None = None
    long_tail_ratio: float | None = None
    amp: bool | None = None
    max_eval_batches: int | None = None
    early_stop_patience: int | None = None
    select: str = "best_val"
    select_k: int = 20
    val_labels_per_class: int | None = None
    weight_decay_norm_bias: bool = False
    feature_metrics: tuple[str, ...] = ()

    def validate(self) -> None:
        super().validate()
        self._check_selection()
        check(self.eval_batch_size, "eval_batch_size", ge=1)
        check(self.head_lr_mult, "head_lr_mult", gt=0)
        self._check_resize()
        check(self.eval_resize, "eval_resize", choices=EVAL_RESIZE)
        check(self.schedule, "schedule", choices=("cosine", "step", "constant"))
        check(self.gamma, "gamma", gt=0, le=1)
        if self.schedule == "step" and any(not 1 <= m <= self.epochs for m in self.milestones):
            raise ConfigError(
                "milestones",
                list(self.milestones),
                f"must be epochs in [1, {self.epochs}] (epochs: {self.epochs}); give milestones "
                "for this length (step schedule)",
            )
        twice = sorted({m for m in self.milestones if list(self.milestones).count(m) > 1})
        if twice:  # each occurrence multiplies the lr by gamma (ftsweep.engine.optim.lr_factor)
            raise ConfigError(
                "milestones",
                list(self.milestones),
                f"names epoch {twice[0]} twice, which multiplies the lr by gamma twice there; give "
                "each epoch once (gamma sets the size of a step)",
            )
        check(self.grad_accum, "grad_accum", ge=1)
        check(self.grad_clip, "grad_clip", gt=0)
        check(self.subsample, "subsample", gt=0, le=1)
        check(self.long_tail_ratio, "long_tail_ratio", ge=1)
        check(self.max_eval_batches, "max_eval_batches", ge=1)
        check(self.early_stop_patience, "early_stop_patience", ge=1)
        if self.amp is False and self.precision in ("bf16", "fp16"):
            raise ConfigError(
                "amp", self.amp, f"amp: false contradicts precision: {self.precision}; give one"
            )
        self._check_label_budget()

    def _check_resize(self) -> None:
        if self.resize_size is None:
            return
        from ftsweep.data import get_dataset_info

        crop = self.image_size or get_dataset_info(self.dataset).image_size
        check(self.resize_size, "resize_size", ge=crop)

    def _check_selection(self) -> None:
        check(self.select, "select", choices=("best_val", "last", "median_last_k"))
        if self.select == "median_last_k":
            check(self.select_k, "select_k", ge=1, le=self.epochs)
        if self.select != "best_val" and self.early_stop_patience is not None:
            raise ConfigError(
                "early_stop_patience",
                self.early_stop_patience,
                f"must be null with select={self.select} (the counted epochs are the last ones)",
            )
        check(self.val_labels_per_class, "val_labels_per_class", ge=1)
        per_class = self.labels_per_class
        if per_class is None and self.num_labels is not None:
            from ftsweep.data import get_dataset_info

            per_class = self.num_labels // get_dataset_info(self.dataset).num_classes
        if self.val_labels_per_class is not None and per_class is not None:
            check(self.val_labels_per_class, "val_labels_per_class", le=per_class)
        for name in self.feature_metrics:
            check(name, "feature_metrics", choices=("s_dbw",))

    def _check_label_budget(self) -> None:
        from ftsweep.data import exact_labels, get_dataset_info

        info = get_dataset_info(self.dataset)
        budget = self.num_labels
        if budget is None and self.labels_per_class is not None:
            budget = self.labels_per_class * info.num_classes
        if budget is None:
            return
        field = "num_labels" if self.num_labels is not None else "labels_per_class"
        value = self.num_labels if self.num_labels is not None else self.labels_per_class
        if self.num_labels is not None and self.num_labels % info.num_classes:
            raise ConfigError(
                field,
                value,
                f"must be a multiple of the {info.num_classes} classes of {info.name} (balanced budget)",
            )
        # where the labels are at hand the split is drawn exactly instead, before Ray starts
        # (ftsweep.config.checks.check_exact_split) and by the trial: the estimate ignores a
        # folder's own val/ and the floor of one image per class of subsample
        if info.num_train is not None and not exact_labels(self.dataset):
            pool = int(info.num_train * (1 - self.val_fraction) * (self.subsample or 1.0))
            if budget > pool:
                raise ConfigError(
                    field,
                    value,
                    f"{budget} labels requested but {info.name} has about {pool} training images "
                    f"after the validation split; allowed: at most {pool // info.num_classes} per class",
                )
