"""The fine-tuning skeleton every method builds on: setup / step / save / restore, Ray-free.

A method module subclasses :class:`FineTuner`, names its frozen config dataclass in
``config_cls`` and overrides :meth:`training_step` (and, when needed, :meth:`build_heads`,
:meth:`train_epoch`, :meth:`epoch_metrics`). ``FineTuner(config)`` builds data, model,
optimiser and model selection; nothing here imports Ray, so a benchmark, a notebook or a test
can step a method with only ``ftsweep`` imported (``trainables.<m>`` wraps it for Ray Tune).
``step()`` runs one epoch and returns a flat dict:

- ``train/<log>`` — batch means of the method's logs (``train/loss`` always);
- ``val/acc``, ``val/mpa``, ``val/loss`` — this epoch's validation metrics;
- ``best/epoch``, ``best/val/acc`` — the epoch selected so far (``select``: ``best_val`` = on
  validation accuracy; ``last`` / ``median_last_k`` = the final epoch / the median over the
  last ``select_k`` epochs, with ``select/counted`` the epochs counted so far);
- ``test/acc``, ``test/mpa`` — test metrics *of the selected epoch* (test images never
  influence selection; they are evaluated only when validation improves, or, for ``last`` /
  ``median_last_k``, only on the epochs that count);
- ``val/<name>`` of the shared ``feature_metrics`` (e.g. ``val/s_dbw``) at the last epoch;
- ``time/epoch_s``, ``time/train_s``, ``train/lr``, ``epoch``;
- ``sched/epoch`` — the epochs so far in which the selection can move
  (:meth:`FineTuner.schedulable_epochs`), the time attribute of the runner's ASHA;
- with ``early_stop_patience`` set: ``early_stop/best_epoch`` (the epoch of the lowest
  ``val/loss`` so far) and ``early_stop/stopped`` (1 on the epoch that ends the trial early).

The final report carries ``done: True`` — after ``epochs`` epochs, or earlier once ``val/loss``
has not decreased for ``early_stop_patience`` epochs (then ``epoch_metrics(last=True)`` runs on
that epoch and the caller takes its end-of-trial checkpoint). Selection stays on ``val/acc``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ftsweep.backbones import classifier_head, create_backbone, load_backbone_weights
from ftsweep.config import ConfigError, TrainConfig
from ftsweep.data import DataBundle, ViewDataset, build_data
from ftsweep.engine import (
    BestTracker,
    EarlyStopping,
    StepOutput,
    build_optimizer,
    build_scheduler,
    epoch_seed,
    evaluate,
    make_loader,
    param_groups,
    reseed,
    resolve_channels_last,
    resolve_device,
    resolve_num_workers,
    resolve_precision,
    seed_everything,
    train_epoch,
)

__all__ = [
    "EPOCH_METRICS",
    "INTERNAL_KEYS",
    "JOB_KEY",
    "METHOD_KEY",
    "METRIC_KEY",
    "RUN_METRICS",
    "FineTuner",
    "resolve_trial_config",
]

#: the config keys of a sweep's trials that name their job and their method
JOB_KEY = "_job"
METHOD_KEY = "_method"
#: the spec's selection metric, which every trial's results must carry (checked by the trial)
METRIC_KEY = "_metric"
#: a trial config's bookkeeping keys (Tune's repeat index, the seeds it picks from, the job):
#: never config fields, never MLflow params
INTERNAL_KEYS = ("__trial_index__", "_seeds", JOB_KEY, METHOD_KEY, METRIC_KEY)
#: the ``val/``, ``best/`` and ``train/`` metrics of every epoch's result (``FineTuner.step``; the
#: method's loss terms come on top: ``FineTuner.reported_metrics``)
EPOCH_METRICS = frozenset(
    {"val/acc", "val/loss", "val/mpa", "best/val/acc", "best/epoch", "train/loss", "train/lr"}
)
#: the rest of every epoch's result (``FineTuner.step``), and the selected epoch's test metrics
#: (``FineTuner.selected_metrics``): in every trial's run, beside :data:`EPOCH_METRICS`
RUN_METRICS = frozenset(
    {"epoch", "sched/epoch", "time/train_s", "time/epoch_s", "test/acc", "test/mpa", "test/loss"}
)


def resolve_trial_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Drop Tune's bookkeeping keys; a ``Repeater`` trial index picks its seed from ``_seeds``."""
    cfg = {k: v for k, v in config.items() if k not in INTERNAL_KEYS}
    if "__trial_index__" in config and "_seeds" in config:
        cfg["seed"] = list(config["_seeds"])[int(config["__trial_index__"])]
    return cfg


class FineTuner:
    """Supervised fine-tuning skeleton shared by every method.

    Args:
        config: the trial's config (fields of ``config_cls``; Tune's ``__trial_index__`` and
            ``_seeds`` are resolved by :func:`resolve_trial_config`).
        logdir: the trial directory for artifacts a method writes at setup (e.g. the UOT
            selection's ``selection.json``); None writes nothing.
    """

    config_cls: ClassVar[type[TrainConfig]] = TrainConfig
    #: view recipes of the labeled / unlabeled training streams (see ftsweep.data.transforms)
    train_views: ClassVar[str | tuple[str, ...]] = "standard"
    unlabeled_views: ClassVar[str | tuple[str, ...] | None] = None

    # ---- construction -------------------------------------------------------------------
    def __init__(self, config: Mapping[str, Any], *, logdir: str | None = None) -> None:
        self.logdir = logdir
        self.setup(config)

    def setup(self, config: Mapping[str, Any]) -> None:
        self.cfg = self.config_cls.from_dict(resolve_trial_config(config))
        if not isinstance(self.cfg.num_workers, int):  # ``auto``: this trial's CPUs minus one
            self.cfg = dataclasses.replace(self.cfg, num_workers=resolve_num_workers(self.cfg.num_workers))
        cfg = self.cfg
        seed_everything(cfg.seed)
        self.device = resolve_device(cfg.device)
        self.precision = resolve_precision(cfg.precision, self.device, cfg.amp)
        self._loaders: dict[str, Iterable] = {}
        self.data = self.limit_val(self.build_data())
        self.model = self.build_model().to(self.device)
        self.channels_last = resolve_channels_last(cfg.channels_last, self.device, self.model)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.batch_views = self.device_views()
        self.optimizer = build_optimizer(
            self.param_groups(),
            name=cfg.optimizer,
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov,
        )
        self.scheduler = build_scheduler(
            self.optimizer,
            schedule=cfg.schedule,
            epochs=cfg.epochs,
            steps_per_epoch=self.optimizer_steps_per_epoch(),
            warmup_epochs=cfg.warmup_epochs,
            milestones=cfg.milestones,
            gamma=cfg.gamma,
        )
        self.tracker = BestTracker("val/acc", "max")
        self.best_model: dict[str, torch.Tensor] | None = None  # the selected epoch's weights (CPU)
        self.counted: list[dict[str, float]] = []  # the counted epochs of select: last / median_last_k
        self.early_stopping = EarlyStopping(cfg.early_stop_patience) if cfg.early_stop_patience else None
        self.epoch = 0
        self.setup_method()

    @classmethod
    def upstream_key(cls, config: Mapping[str, Any]) -> str | None:
        """The shared artefacts a trial of ``config`` builds at setup and later trials reuse
        (a stage-1 checkpoint, a feature cache), as one key, or None. The runner builds each
        distinct key once, as an upstream task, before the dependants are scheduled — so no
        trial holds a GPU while it waits for another trial's build."""
        return None

    def setup_method(self) -> None:
        """Hook for method state built after the model and optimiser (EMA copies, queues)."""

    def build_data(self) -> DataBundle:
        cfg = self.cfg
        return build_data(
            cfg.dataset,
            seed=cfg.seed,
            root=cfg.data_root,
            download=cfg.download,
            val_fraction=cfg.val_fraction,
            labels_per_class=cfg.labels_per_class,
            num_labels=cfg.num_labels,
            subsample=cfg.subsample,
            long_tail_ratio=cfg.long_tail_ratio,
            train_views=self.train_views,
            unlabeled_views=self.unlabeled_views,
            image_size=cfg.image_size,
            resize_size=cfg.resize_size,
            eval_resize=cfg.eval_resize,
        )

    def limit_val(self, data: DataBundle) -> DataBundle:
        """``val_labels_per_class`` images per class of the validation split (drawn by
        ``seed``), so that a labeled validation set no bigger than the label budget selects."""
        k = self.cfg.val_labels_per_class
        if k is None:
            return data
        val, loaded = data.val, data.loaded
        # a folder's own val/ part, else the split carved from train
        own = loaded.val is not None and val.base is loaded.val
        targets = np.asarray(loaded.val_targets if own else loaded.train_targets)[val.indices]
        rng = np.random.default_rng([self.cfg.seed, 0x5E1EC7])
        keep = [rng.permutation(np.flatnonzero(targets == c))[:k] for c in np.unique(targets)]
        indices = val.indices[np.sort(np.concatenate(keep))]
        return dataclasses.replace(data, val=ViewDataset(val.base, indices, val.transform))

    def build_backbone(self) -> nn.Module:
        """The backbone with the configured initial weights."""
        backbone = create_backbone(self.cfg.backbone)
        if self.cfg.pretrained not in ("none", ""):
            if self.cfg.pretrained == "auto":
                raise ConfigError(
                    "pretrained",
                    "auto",
                    "must be resolved to a checkpoint path before the trial starts "
                    "(ftsweep run does this); give a path or none",
                )
            load_backbone_weights(backbone, self.cfg.pretrained, format=self.cfg.checkpoint_format)
        return backbone

    def build_heads(self, num_features: int) -> dict[str, nn.Module]:
        """Heads beside the backbone; ``classifier`` at least."""
        return {"classifier": classifier_head(num_features, self.data.num_classes)}

    def build_model(self) -> nn.ModuleDict:
        backbone = self.build_backbone()
        return nn.ModuleDict({"backbone": backbone, **self.build_heads(backbone.num_features)})

    def param_groups(self) -> list[dict]:
        mult = {name: self.cfg.head_lr_mult for name in self.model if name != "backbone"}
        return param_groups(
            self.model,
            lr=self.cfg.lr,
            weight_decay=self.cfg.weight_decay,
            lr_mult=mult,
            decay_norm_bias=self.cfg.weight_decay_norm_bias,
        )

    def steps_per_epoch(self) -> int:
        n = -(-len(self.data.labeled) // self.cfg.batch_size)
        return min(n, self.cfg.max_train_batches or n)

    def optimizer_steps_per_epoch(self) -> int:
        """Optimiser steps of an epoch: one per ``grad_accum`` batches and one for the batches
        left over (``ftsweep.engine.loop.train_epoch``), ``⌈batches / grad_accum⌉``: the
        length every schedule is sized by."""
        return max(1, -(-self.steps_per_epoch() // self.cfg.grad_accum))

    # ---- forward helpers ----------------------------------------------------------------
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits used for evaluation."""
        return self.model["classifier"](self.model["backbone"](x))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features used by feature metrics."""
        return self.model["backbone"](x)

    # ---- one epoch ----------------------------------------------------------------------
    def training_step(self, batch: Any) -> StepOutput:
        """Loss of one labeled batch (CE by default); returns ``(loss, logs)``."""
        x, y, _ = batch
        x, y = x.to(self.device), y.to(self.device)
        logits = self.predict(x)
        return nn.functional.cross_entropy(logits, y), {}

    def loader(self, key: str, dataset: Any, *, batch_size: int, shuffle: bool, seed: int, **kw: Any) -> Any:
        """A loader kept across epochs (persistent workers) and re-seeded with ``seed`` on each
        call: same batches and views as a fresh ``make_loader(dataset, seed=seed)``."""
        cached = self._loaders.get(key)
        if cached is None:
            persistent = self.cfg.num_workers > 0
            cached = make_loader(
                dataset,
                batch_size=batch_size,
                shuffle=shuffle,
                seed=seed,
                num_workers=self.cfg.num_workers,
                pin_memory=self.device.type == "cuda",
                persistent_workers=persistent,
                **kw,
            )
            self._loaders[key] = cached
        return reseed(cached, seed)

    def device_views(self) -> dict[str, Any] | None:
        """With ``gpu_augment`` (``auto``: on CUDA), swap the training streams for prepared
        uint8 images and return their batched views (drawn on ``self.device`` in
        :meth:`train_epoch`); None keeps the per-image CPU views."""
        from ftsweep.data.gpu_views import device_view_stream, use_device_views

        if not use_device_views(self.cfg.gpu_augment, self.device):
            return None
        info, data = self.data.info, self.data
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        views, streams = {}, {}
        for stream, names in (
            ("labeled", self.train_views),
            ("unlabeled", self.unlabeled_views or self.train_views),
        ):
            ds = getattr(data, stream)
            if ds is None:
                continue
            streams[stream], views[stream] = device_view_stream(ds, info, names, stream, memory_format=fmt)
        self.data = dataclasses.replace(data, **streams)
        return views

    def train_batches(self, seed: int) -> Iterable:
        return self.loader(
            "train", self.data.labeled, batch_size=self.cfg.batch_size, shuffle=True, seed=seed
        )

    def train_epoch(self) -> dict[str, float]:
        seed = epoch_seed(self.cfg.seed, self.epoch)
        torch.manual_seed(seed)
        self.model.train()
        batches = self.train_batches(seed)
        if self.batch_views is not None:
            from ftsweep.data.gpu_views import DeviceBatches

            batches = DeviceBatches(batches, self.batch_views, self.device)
        return train_epoch(
            self.training_step,
            batches,
            self.optimizer,
            self.scheduler,
            params=self.model.parameters(),
            grad_accum=self.cfg.grad_accum,
            grad_clip=self.cfg.grad_clip,
            max_batches=self.cfg.max_train_batches,
            after_step=self.after_optimizer_step,
            precision=self.precision,
            device=self.device,
        )

    def after_optimizer_step(self) -> None:
        """Hook run after every optimiser step (EMA updates)."""

    def eval_loader(self, split: str) -> Iterable:
        ds = getattr(self.data, split)
        if split == "val":  # every epoch: keep its workers
            return self.loader("val", ds, batch_size=self.cfg.eval_batch_size, shuffle=False, seed=0)
        return make_loader(
            ds, batch_size=self.cfg.eval_batch_size, shuffle=False, num_workers=self.cfg.num_workers
        )

    def evaluate_split(self, split: str) -> dict[str, float]:
        self.model.eval()
        metrics = evaluate(
            self.predict,
            self.eval_loader(split),
            self.device,
            max_batches=self.cfg.max_eval_batches,
            precision=self.precision,
        )
        return {f"{split}/{k}": v for k, v in metrics.items()}

    def epoch_metrics(self, last: bool) -> dict[str, float]:
        """Extra metrics for this epoch (feature metrics etc.); ``last`` on the final epoch."""
        return {}

    def feature_metrics(self, skip: set[str] = frozenset()) -> dict[str, float]:
        """The shared ``feature_metrics`` of the validation backbone features (``val/s_dbw``:
        classes as clusters, the s-dbw package's definition COIN's Table 2 uses); names in
        ``skip`` (already logged by the method, e.g. COIN's own ``val/s_dbw``) are left out."""
        names = [n for n in self.cfg.feature_metrics if f"val/{n}" not in skip]
        if not names:
            return {}
        from itertools import islice

        from ftsweep.engine import extract_features
        from ftsweep.metrics import s_dbw

        self.model.eval()
        loader = self.eval_loader("val")
        if self.cfg.max_eval_batches is not None:
            loader = islice(loader, self.cfg.max_eval_batches)
        feats, labels = extract_features(self.encode, loader, self.device)
        return {f"val/{name}": float(s_dbw(feats, labels, variant="official")) for name in names}

    @classmethod
    def loss_terms(cls, cfg: Any) -> tuple[str, ...]:
        """The terms ``training_step`` logs in every epoch of a trial of ``cfg`` (reported as
        ``train/<term>``); a term some epochs leave out (COIN's stage-2 ``ce``) is not one."""
        return ()

    @classmethod
    def reported_metrics(cls, cfg: Any) -> frozenset[str]:
        """The ``val/``, ``best/`` and ``train/`` metrics that every epoch of a trial of ``cfg``
        reports: what the spec's ``metric`` and ``stop`` keys may name, checked before Ray starts
        (``ftsweep.runner.check_jobs``) because the trial fails on the first epoch without it."""
        return EPOCH_METRICS | {f"train/{term}" for term in cls.loss_terms(cfg)}

    @classmethod
    def logged_metrics(cls, cfg: Any) -> frozenset[str]:
        """Every metric some epoch of a trial of ``cfg`` reports, so the metric columns its MLflow
        run ends with (Tune's own result fields aside): what the spec's ``table.metric`` and
        ``table.select_by`` may name, checked before Ray starts (``ftsweep.runner.check_jobs``),
        as a typo would leave no table only once the sweep has run. A method adds what its
        ``epoch_metrics`` report; a name that the data decide may be left out of a run
        (UOT's ``selection/recall``) counts as logged."""
        out = set(cls.reported_metrics(cfg)) | RUN_METRICS
        out |= {f"val/{name}" for name in cfg.feature_metrics}
        if cfg.select != "best_val":
            out.add("select/counted")
        if cfg.early_stop_patience is not None:
            out |= {"early_stop/best_epoch", "early_stop/stopped"}
        return frozenset(out)

    # ---- model selection ------------------------------------------------------------------
    @staticmethod
    def counted_epochs(cfg: Any) -> int:
        """How many final epochs the ``last`` / ``median_last_k`` protocols of ``cfg`` count."""
        return cfg.select_k if cfg.select == "median_last_k" else 1

    @classmethod
    def test_passes(cls, cfg: Any) -> int:
        """Passes over the test split a trial of ``cfg`` makes for its selection (``ftsweep.plan``):
        one per counted epoch; under ``best_val`` the least, one (it tests again whenever
        validation improves)."""
        return cls.counted_epochs(cfg)

    @classmethod
    def source_views(cls, cfg: Any) -> str | tuple[str, ...] | None:
        """The views of a second stream's batch that joins every training batch (of
        ``batch_size`` images, ``ftsweep.plan``); None: no such stream."""
        return None

    @classmethod
    def extra_eval_passes(cls, cfg: Any) -> dict[str, int]:
        """Evaluation passes a trial of ``cfg`` makes beside the validation split every epoch and
        :meth:`test_passes`, by split (``ftsweep.plan``): the ``feature_metrics`` pass over the
        validation split at the last epoch."""
        return {"val": 1} if cfg.feature_metrics else {}

    def select_epoch(self, val: dict[str, float]) -> None:
        """Update the selection with this epoch's validation metrics (``self.epoch`` 1-based).

        ``best_val``: the tracker keeps the best ``val/acc`` epoch and its test metrics.
        ``last`` / ``median_last_k``: test is evaluated on the counted (final) epochs only; the
        selection is the median of every metric over them (the last one for ``last``), and
        ``best/epoch`` is the latest counted epoch."""
        if self.cfg.select == "best_val":
            if self.tracker.update(self.epoch, val):
                self.tracker.selected = {**val, **self.selected_metrics()}
                self.keep_best_model()
            return
        if self.epoch <= self.cfg.epochs - self.counted_epochs(self.cfg):
            return
        self.counted.append({**val, **self.selected_metrics()})
        keys = set.intersection(*(set(c) for c in self.counted))
        selected = {k: float(np.median([c[k] for c in self.counted])) for k in sorted(keys)}
        self.tracker.best, self.tracker.epoch, self.tracker.selected = (
            selected.get("val/acc"),
            self.epoch,
            selected,
        )
        self.keep_best_model()

    def keep_best_model(self) -> None:
        """Copy the model's weights as the selected epoch's (``best/epoch``): every checkpoint
        writes them beside ``state.pt`` as ``best_model.pt`` (a plain state_dict), which
        ``ftsweep export`` exports — the checkpoint itself holds the latest epoch's.
        ``median_last_k``: the latest counted epoch's weights. They are those of
        :meth:`eval_model`, the model evaluation uses (a stage-2 method's EMA with ``ema_eval``)."""
        state = self.eval_model().state_dict()
        self.best_model = {k: v.detach().to("cpu", copy=True) for k, v in state.items()}

    def eval_model(self) -> nn.Module:
        """The ``nn.ModuleDict`` (``backbone`` + heads) that validation and test evaluate."""
        return self.model

    def schedulable_epochs(self) -> int:
        """The epochs so far in which the selection metric can move: ``sched/epoch``, the time
        an early-stopping scheduler (ASHA) compares trials on (docs/design.md, "Schedulers and
        stages"); :meth:`schedulable_at` of this trial's config and epoch."""
        return self.schedulable_at(self.cfg, self.epoch)

    @classmethod
    def schedulable_at(cls, cfg: Any, epoch: int) -> int:
        """``sched/epoch`` of a trial of ``cfg`` after ``epoch`` epochs (``cfg.epochs``: its last
        report, which ``ftsweep.plan.search_notes`` compares with ASHA's grace period).
        ``best_val``: the epochs after ``warmup_epochs``; ``last`` / ``median_last_k``: the
        counted (final) epochs so far (``best/val/acc`` is undefined before them). A method with
        a stage that cannot move it (COIN's stage 1) overrides this."""
        if cfg.select != "best_val":
            return max(0, epoch - (cfg.epochs - cls.counted_epochs(cfg)))
        return max(0, epoch - cfg.warmup_epochs)

    def selected_metrics(self) -> dict[str, float]:
        """Metrics of the selected epoch computed when validation improves (test by default)."""
        return self.evaluate_split("test")

    def step(self) -> dict[str, float]:
        t0 = time.perf_counter()
        train_logs = self.train_epoch()
        t_train = time.perf_counter() - t0
        val = self.evaluate_split("val")
        self.epoch += 1
        self.select_epoch(val)
        stop_early = self.early_stopping is not None and self.early_stopping.update(self.epoch, val)
        last = self.epoch >= self.cfg.epochs or stop_early
        result: dict[str, float] = {f"train/{k}": float(v) for k, v in train_logs.items()}
        result.update(val)
        result.update({k: v for k, v in self.tracker.selected.items() if not k.startswith("val/")})
        result.update(self.epoch_metrics(last))
        if last:
            result.update(self.feature_metrics(skip=set(result)))
        result.update(
            {
                "best/epoch": float(self.tracker.epoch),
                "best/val/acc": float("nan") if self.tracker.best is None else float(self.tracker.best),
                "epoch": float(self.epoch),
                "sched/epoch": float(self.schedulable_epochs()),
                "train/lr": float(self.optimizer.param_groups[0]["lr"]),
                "time/train_s": t_train,
                "time/epoch_s": time.perf_counter() - t0,
            }
        )
        if self.cfg.select != "best_val":
            result["select/counted"] = float(len(self.counted))
        if self.early_stopping is not None:
            result["early_stop/best_epoch"] = float(self.early_stopping.tracker.epoch)
            result["early_stop/stopped"] = float(stop_early and self.epoch < self.cfg.epochs)
        if last:
            result["done"] = True
        return result

    # ---- checkpoints ----------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """Method state to checkpoint beyond model/optimiser/scheduler (EMA, queues)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` saved."""

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "tracker": self.tracker.state_dict(),
            "counted": [dict(c) for c in self.counted],
            "early_stop": None if self.early_stopping is None else self.early_stopping.state_dict(),
            "extra": self.extra_state(),
        }
        tmp = Path(checkpoint_dir) / "state.pt.tmp"
        torch.save(state, tmp)
        os.replace(tmp, Path(checkpoint_dir) / "state.pt")
        if self.best_model is not None:  # the selected epoch's weights (keep_best_model)
            torch.save(self.best_model, tmp)
            os.replace(tmp, Path(checkpoint_dir) / "best_model.pt")

    def load_checkpoint(self, checkpoint: str | dict | None) -> None:
        assert isinstance(checkpoint, str), f"expected a checkpoint directory, got {type(checkpoint)}"
        state = torch.load(Path(checkpoint) / "state.pt", map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        best = Path(checkpoint) / "best_model.pt"
        self.best_model = torch.load(best, map_location="cpu", weights_only=True) if best.is_file() else None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = state["epoch"]
        self.tracker.load_state_dict(state["tracker"])
        self.counted = [dict(c) for c in state.get("counted", [])]
        if self.early_stopping is not None and state.get("early_stop") is not None:
            self.early_stopping.load_state_dict(state["early_stop"])
        self.load_extra_state(state["extra"])

    def reset_config(self, new_config: Mapping[str, Any]) -> bool:
        """Rebuild everything for the new config in the same process (Tune's actor reuse)."""
        self.setup(new_config)
        return True
