"""The cost of a sweep before it starts: per job and in total, trials, epochs, images and the
estimated wall time and GPU-hours on a given cluster.

Counts (exact, from the spec alone):

- trials: ``ftsweep.runner.job_trials``; with ``searcher: grid | random`` every trial config is
  enumerated (``ftsweep.routing.variants``), so a search axis over ``epochs`` is counted per
  trial; with ``optuna`` each of its trials costs the mean of the grid's configs.
- epochs: the config's ``epochs`` per trial (no early stopping: ASHA, ``stop`` and
  ``early_stop_patience`` can only lower it; but see the test passes below, so the plan is an
  estimate, not the sweep's upper bound).
- training images per epoch (image-views through the network): a supervised epoch passes the
  labeled split once (``max_train_batches`` × ``batch_size`` at most) in each of the method's
  ``train_views``; a step-based epoch (configs with ``iters_per_epoch``: the target pretraining
  stage-2 learners) is ``steps × batch_size`` labeled views plus ``steps × mu × batch_size`` in
  each of the ``unlabeled_views``; a method with a second stream (``source_views``: UOT
  selection's chosen source images) adds a batch of ``batch_size`` in each of those views to
  every training batch. Split sizes follow ``ftsweep.data.splits.make_splits`` on the
  dataset's labels when they load without a download (digits and other offline datasets),
  otherwise on ``DatasetInfo.num_train`` spread evenly over the classes.
- evaluation images: the validation split every epoch (``val_labels_per_class`` and
  ``max_eval_batches`` applied), the test split at the counted epochs (the method's
  ``test_passes``: ``best_val`` and ``last`` once — at least once, as ``best_val`` tests again
  whenever validation improves; ``median_last_k`` ``select_k`` times; COIN's stage-1 epochs
  never), and the method's other passes (``extra_eval_passes``: ``feature_metrics`` and
  COIN's S_Dbw over validation, SCHaNe's test and novel features at the last epoch).
- checkpoints: every ``checkpoint_frequency`` epochs of a trial and once at its end
  (``checkpoint_at_end``; only there with ``checkpoint_frequency: 0``).
- a shared stage 1 of target pretraining (``stage1:``) is a job of its own, counted once per
  distinct stage-1 config across the spec: ``epochs × (pool // batch) × batch × 2`` views (the
  pool: the train part minus validation; the batch: ``batch_size``, at most the pool; the last
  incomplete batch is dropped).
- not counted: UOT selection's feature extraction before its first epoch, clustering
  evaluations of stage 1, the one-off ``pretrained: auto`` SimCLR checkpoint.

Estimate: trial-seconds = trials × set-up seconds (building a trial's data and model, optional)
+ training images ÷ training images/s + evaluation images ÷ evaluation images/s + checkpoints ×
seconds per checkpoint (saving the trial's state and Tune persisting it, optional), from a
:class:`ThroughputTable` (measured, the user's file) or from :func:`calibrate` (a few real steps
here). GPU-hours = trial-seconds × ``resources.gpu`` ÷ 3600.
Wall time = ``max(total trial-seconds ÷ slots, the longest single trial)``: the trials at once
(``slots``) are ``gpus ÷ gpu per trial`` (and ``cpus ÷ cpu per trial`` where ``--cpus`` is
given), or ``cpus ÷ cpu per trial`` for CPU trials, at most ``max_concurrent_trials`` and at
most the sweep's trials; a cluster that cannot hold one trial is refused (``ConfigError`` on
``--gpus`` / ``--cpus``). This is a lower bound for any schedule — perfect packing and no
start-up, and no sweep ends before its longest trial (a shared stage 1 counts as a trial of its
own, its stage-2 trials' wait for it is not added; the longest trial of an Optuna job that runs
fewer trials than its grid has cells is its mean trial). The table's ``trials' time`` is a job's
trial-seconds, the sum over its trials.

Notes (:func:`search_notes`, printed under the table): where the spec's search would spend its
budget for nothing — an Optuna job that can use no result, an ASHA that stops no trial.

Throughput table (JSON or YAML)::

    {"entries": [
      {"method": "ce", "backbone": "small_cnn", "image_size": 32, "device": "cpu",
       "train_images_per_s": 850.0, "eval_images_per_s": 4100.0, "setup_s": 1.5,
       "checkpoint_s": 0.02},
      {"method": "*", "backbone": "torchvision.resnet50", "image_size": 224,
       "device": "NVIDIA H200", "train_images_per_s": 2400.0, "eval_images_per_s": 7000.0}]}

``setup_s`` (optional, default 0): seconds to build one trial's data and model before its first
step. ``checkpoint_s`` (optional, default 0): seconds to write one checkpoint (the model,
optimizer and selection state, then Tune's copy of that directory into the storage path).
``method: "*"`` matches any method of that (backbone, image size, device). ``device`` is
``cpu`` (any case: ``CPU`` reads as ``cpu``) or the GPU's name as torch reports it
(``torch.cuda.get_device_name()``). :func:`load_throughput` refuses an empty file, keys other
than these, an ``image_size`` <= 0, a method that is not registered (``ftsweep.registry``) or
``*``, an unknown backbone and two entries of one (method, backbone, image size, device). Entries
of two GPU kinds for one (method, backbone, image size) are ambiguous: :func:`plan_spec` refuses
them unless its ``gpu_kind`` names the cluster's. A benchmark
writes it with :func:`write_throughput` (``calibrate`` results, or rows of a GPU benchmark
converted with :func:`throughput_entry`).
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ftsweep.config import ConfigError
from ftsweep.config.spec import Job, SweepSpec, read_yaml

__all__ = [
    "JobPlan",
    "SweepPlan",
    "Throughput",
    "ThroughputTable",
    "calibrate",
    "format_plan",
    "job_counts",
    "load_throughput",
    "plan_spec",
    "throughput_entry",
    "distinct_points",
    "trial_configs",
    "write_throughput",
]

ANY = "*"
#: the views of a stage-1 step (BYOL / MoCo v2: two augmented views of each image)
STAGE1_VIEWS = 2
STAGE1_METHOD = "target_pretrain"


@dataclass(frozen=True)
class Throughput:
    """Measured images per second of one (method, backbone, image size, device), the seconds
    one trial takes to build its data and model (``setup``) and to write one checkpoint
    (``checkpoint``)."""

    train: float
    eval: float
    setup: float = 0.0
    checkpoint: float = 0.0


@dataclass(frozen=True)
class ThroughputTable:
    """``(method, backbone, image_size, device) → Throughput``; ``method = "*"`` matches any."""

    entries: dict[tuple[str, str, int, str], Throughput] = field(default_factory=dict)
    #: the file it was read from (:func:`load_throughput`), for errors; ``""`` otherwise
    source: str = field(default="", compare=False)

    def lookup(self, method: str, backbone: str, image_size: int, device: str) -> Throughput | None:
        for m in (method, ANY):
            hit = self.entries.get((m, backbone, int(image_size), device))
            if hit is not None:
                return hit
        return None


@dataclass(frozen=True)
class JobPlan:
    """The cost of one job (or of one shared stage-1 artefact, ``stage1 = True``).

    Attributes:
        trials: trials of the job (distinct stage-1 configs for a stage-1 row).
        epochs: epochs over all its trials.
        train_images / eval_images: image-views trained on / evaluated over all its trials.
        checkpoints: checkpoints written over all its trials (0 for a shared stage 1, built
            once outside Tune's trials).
        device: ``cpu`` or the GPU kind the throughput is for.
        throughput: the images/s used (None: no estimate).
        seconds: trial-seconds (sum over its trials of one trial's run time); None without a
            throughput.
        gpu_hours: ``seconds × gpu per trial ÷ 3600``.
        longest: seconds of its longest single trial (its mean trial where an Optuna job's
            trials cost the mean grid config); None without a throughput.
        trial_counts: ``(epochs, train_images, eval_images, checkpoints)`` of each of its trials
            (empty where the trials cost the mean grid config).
    """

    name: str
    method: str
    dataset: str
    backbone: str
    image_size: int
    trials: int
    epochs: int
    train_images: int
    eval_images: int
    device: str
    gpu_per_trial: float
    checkpoints: int = 0
    stage1: bool = False
    throughput: Throughput | None = None
    seconds: float | None = None
    gpu_hours: float | None = None
    longest: float | None = None
    trial_counts: tuple[tuple[int, int, int, int], ...] = field(default=(), repr=False, compare=False)


@dataclass(frozen=True)
class SweepPlan:
    """Every job's :class:`JobPlan` and the totals on a cluster of ``slots`` parallel trials;
    ``notes``: :func:`search_notes`."""

    jobs: tuple[JobPlan, ...]
    slots: int
    gpus: float | None
    cpus: float | None
    notes: tuple[str, ...] = ()

    @property
    def trials(self) -> int:
        return sum(j.trials for j in self.jobs if not j.stage1)

    @property
    def epochs(self) -> int:
        return sum(j.epochs for j in self.jobs)

    @property
    def train_images(self) -> int:
        return sum(j.train_images for j in self.jobs)

    @property
    def eval_images(self) -> int:
        return sum(j.eval_images for j in self.jobs)

    @property
    def checkpoints(self) -> int:
        return sum(j.checkpoints for j in self.jobs)

    @property
    def seconds(self) -> float | None:
        """Total trial-seconds (None when a job has no throughput)."""
        if any(j.seconds is None for j in self.jobs):
            return None
        return sum(j.seconds or 0.0 for j in self.jobs)

    @property
    def gpu_hours(self) -> float | None:
        if any(j.gpu_hours is None for j in self.jobs):
            return None
        return sum(j.gpu_hours or 0.0 for j in self.jobs)

    @property
    def longest(self) -> float | None:
        """Seconds of the sweep's longest single trial (None when a job has no throughput)."""
        if not self.jobs or any(j.longest is None for j in self.jobs):
            return None
        return max(j.longest or 0.0 for j in self.jobs)

    @property
    def wall_seconds(self) -> float | None:
        """``max(total trial-seconds ÷ slots, the longest trial)``: perfect packing of the
        trials into the ``slots`` the cluster holds at once, and no less than one trial."""
        s, longest = self.seconds, self.longest
        return None if s is None or longest is None else max(s / self.slots, longest)


# ---- counts ---------------------------------------------------------------------------------
def _views(views: str | Sequence[str] | None) -> int:
    if views is None:
        return 0
    return 1 if isinstance(views, str) else len(views)


def split_sizes(cfg: Any) -> dict[str, int]:
    """``labeled``, ``unlabeled``, ``val`` (after ``val_labels_per_class``), ``test``, ``novel``
    (a few-shot benchmark's novel classes, else 0) sizes of a config's data, and
    ``val_fewest``: the validation images of its smallest class before
    ``val_labels_per_class``. By ``make_splits`` on the dataset's labels where they are at hand
    (``ftsweep.data.exact_labels``: embedded data, image folders; a folder's own ``val/`` is the
    validation part), else on ``num_train`` spread evenly over the classes."""
    import numpy as np

    from ftsweep.data import exact_labels, get_dataset_info, load_dataset
    from ftsweep.data.splits import make_splits

    info = get_dataset_info(cfg.dataset)
    own_val = None  # a folder's own val/ part: its labels
    num_novel = info.num_novel or 0
    if exact_labels(cfg.dataset):
        loaded = load_dataset(cfg.dataset, cfg.data_root)
        targets, num_test = np.asarray(loaded.train_targets), len(loaded.test_targets)
        own_val = None if loaded.val is None else np.asarray(loaded.val_targets)
        num_novel = 0 if loaded.novel is None else len(loaded.novel)
    else:
        if info.num_train is None or info.num_test is None:
            raise ConfigError("dataset", cfg.dataset, "its split sizes are unknown without the data")
        per, extra = divmod(info.num_train, info.num_classes)
        targets = np.concatenate(
            [np.full(per + (c < extra), c) for c in range(info.num_classes)]
        )  # fmt: skip
        num_test = info.num_test
    s = make_splits(
        targets,
        seed=cfg.seed,
        val_fraction=0.0 if own_val is not None else cfg.val_fraction,  # as ftsweep.data.build_data
        labels_per_class=cfg.labels_per_class,
        num_labels=cfg.num_labels,
        subsample=getattr(cfg, "subsample", None),
        long_tail_ratio=getattr(cfg, "long_tail_ratio", None),
    )
    counts = np.bincount(targets[s.val] if own_val is None else own_val, minlength=info.num_classes)
    vlpc = getattr(cfg, "val_labels_per_class", None)
    val = int(counts.sum() if vlpc is None else np.minimum(counts, vlpc).sum())  # FineTuner.limit_val
    return {
        "labeled": len(s.labeled),
        "unlabeled": len(s.unlabeled),
        "val": val,
        "test": num_test,
        "novel": num_novel,
        "val_fewest": int(counts.min()),
    }


def _capped(images: int, batch: int, max_batches: int | None) -> int:
    return images if max_batches is None else min(images, max_batches * batch)


def _trial_counts(method_cls: type, cfg: Any) -> tuple[int, int, int]:
    """``(epochs, train_images, eval_images)`` of one trial of ``cfg``."""
    from ftsweep.methods.base import FineTuner

    sizes = split_sizes(cfg)
    if not issubclass(method_cls, FineTuner):  # stage 1 as a trial of its own
        return _stage1_counts(cfg)
    if hasattr(cfg, "iters_per_epoch"):  # step-based epochs of fixed batches
        steps = min(cfg.iters_per_epoch, cfg.max_train_batches or cfg.iters_per_epoch)
        per_epoch = steps * cfg.batch_size * _views(method_cls.train_views)
        per_epoch += steps * getattr(cfg, "mu", 0) * cfg.batch_size * _views(method_cls.unlabeled_views)
    else:
        per_epoch = _capped(sizes["labeled"], cfg.batch_size, cfg.max_train_batches)
        batches = -(-per_epoch // cfg.batch_size)
        per_epoch *= _views(method_cls.train_views)
        per_epoch += batches * cfg.batch_size * _views(method_cls.source_views(cfg))
    evaluated = {
        k: _capped(sizes[k], cfg.eval_batch_size, cfg.max_eval_batches) for k in ("val", "test", "novel")
    }
    passes = {"val": cfg.epochs, "test": method_cls.test_passes(cfg)}
    for split, n in method_cls.extra_eval_passes(cfg).items():
        passes[split] = passes.get(split, 0) + n
    return cfg.epochs, cfg.epochs * per_epoch, sum(n * evaluated[k] for k, n in passes.items())


def trial_checkpoints(epochs: int, frequency: int) -> int:
    """Checkpoints one trial of ``epochs`` epochs writes: every ``frequency`` epochs and at its
    end (Tune's ``checkpoint_at_end``, unless the last epoch just wrote one); ``frequency`` 0:
    only at the end."""
    if frequency <= 0:
        return 1
    return epochs // frequency + (1 if epochs % frequency else 0)


def _stage1_counts(cfg: Any) -> tuple[int, int, int]:
    sizes = split_sizes(cfg)
    pool = sizes["labeled"] + sizes["unlabeled"]
    batch = min(cfg.batch_size, pool)  # a batch above the pool is the pool (ftsweep.pretrain.pool)
    steps = pool // batch
    steps = min(steps, cfg.max_train_batches or steps)
    return cfg.epochs, cfg.epochs * steps * batch * STAGE1_VIEWS, 0


def trial_configs(spec: SweepSpec, job: Job) -> list[dict[str, Any]]:
    """Every trial's searched values and seed of one job (``ftsweep.routing.variants``: a grid's
    cells, a random search's draws; an Optuna job's grid cells or draws of its domains)."""
    from ftsweep.routing import variants

    return variants(job.space, spec.seeds, spec.num_samples, spec.seeds[0])


def distinct_points(spec: SweepSpec, job: Job) -> list[dict[str, Any]]:
    """:func:`trial_configs` without the seed, each configuration once (in run order)."""
    points: list[dict[str, Any]] = []
    for config in trial_configs(spec, job):
        point = {k: v for k, v in config.items() if k != "seed"}
        if point not in points:
            points.append(point)
    return points


def job_counts(spec: SweepSpec, job: Job) -> tuple[JobPlan, list[tuple[Any, JobPlan]]]:
    """The counts of one job (no estimate yet) and its trials' stage-1 configs with their counts
    (``(TargetPretrainConfig, JobPlan)``, one per trial that has a ``stage1``; deduplicated
    across the spec by :func:`plan_spec`)."""
    from ftsweep.runner import job_trials
    from ftsweep.trial import method_class

    cls = method_class(job.method)
    trials = job_trials(spec, job)
    configs = trial_configs(spec, job)
    epochs = train = evals = checkpoints = 0
    stage1: list[tuple[Any, JobPlan]] = []
    per_trial: list[tuple[int, int, int, int]] = []
    cfg = None
    for point in configs:
        cfg = job.config_cls.from_dict({**job.fixed, **point})
        e, t, v = _trial_counts(cls, cfg)
        c = trial_checkpoints(e, spec.checkpoint_frequency)
        epochs, train, evals, checkpoints = epochs + e, train + t, evals + v, checkpoints + c
        per_trial.append((e, t, v, c))
        s1 = _stage1_of(cfg)
        if s1 is not None:
            e1, t1, v1 = _stage1_counts(s1)
            size = s1.image_size or _dataset_size(s1.dataset)
            row = JobPlan(f"{job.name}:stage1", STAGE1_METHOD, s1.dataset, s1.backbone, size, 1, e1, t1, v1,
                          _device(spec), spec.resources.get("gpu", 0.0), stage1=True,
                          trial_counts=((e1, t1, v1, 0),))  # fmt: skip
            stage1.append((s1, row))
    if trials != len(configs):  # optuna: each suggestion costs the mean grid config
        scale = trials / len(configs)
        epochs, train, evals, checkpoints = (round(x * scale) for x in (epochs, train, evals, checkpoints))
        per_trial = []  # which configurations run is unknown: its longest trial is the mean one
    assert cfg is not None
    size = cfg.image_size or _dataset_size(cfg.dataset)
    plan = JobPlan(job.name, job.method, job.dataset, cfg.backbone, size, trials, epochs, train, evals,
                   _device(spec), spec.resources.get("gpu", 0.0), checkpoints,
                   trial_counts=tuple(per_trial))  # fmt: skip
    return plan, stage1


def _stage1_of(cfg: Any) -> Any:
    if getattr(cfg, "stage1", None) is None:
        return None
    from ftsweep.methods.stage2 import stage1_config

    return stage1_config(cfg)


def _dataset_size(dataset: str) -> int:
    from ftsweep.data import get_dataset_info

    return get_dataset_info(dataset).image_size


def _device(spec: SweepSpec, gpu_kind: str | None = None) -> str:
    return (gpu_kind or "gpu") if spec.resources.get("gpu", 0.0) > 0 else "cpu"


# ---- estimate -------------------------------------------------------------------------------
def parallel_slots(spec: SweepSpec, gpus: float | None = None, cpus: float | None = None) -> int:
    """How many trials the cluster holds at once: ``gpus ÷ gpu per trial`` for GPU trials (and
    ``cpus ÷ cpu per trial`` where ``cpus`` is given), ``cpus ÷ cpu per trial`` otherwise (this
    machine's CPUs when not given), at most ``max_concurrent_trials``; at least 1 (not capped by
    the sweep's trials: :func:`plan_spec` does that).

    Raises:
        ConfigError: on ``--gpus`` for GPU trials without it or with fewer GPUs than one trial
            needs, on ``--cpus`` for fewer CPUs than one trial needs (as ``ftsweep run`` refuses
            a cluster that cannot hold one trial). This machine's CPUs, the default, are not
            refused (:func:`plan_spec` notes it).
    """
    import os

    gpu, cpu = spec.resources.get("gpu", 0.0), spec.resources.get("cpu", 1.0)
    slots: float = math.inf
    if gpu > 0:
        if gpus is None:
            raise ConfigError("--gpus", gpus, "a spec with resources.gpu > 0 needs the cluster's GPU count")
        slots = math.floor(gpus / gpu + 1e-9)
        if slots < 1:
            raise ConfigError(
                "--gpus", gpus, f"cannot hold one trial: each trial needs resources.gpu {gpu:g} GPU(s)"
            )
    if cpus is not None or gpu == 0:
        held = math.floor((cpus if cpus is not None else os.cpu_count() or 1) / cpu + 1e-9)
        if held < 1 and cpus is not None:
            raise ConfigError(
                "--cpus", cpus, f"cannot hold one trial: each trial needs resources.cpu {cpu:g} CPU(s)"
            )
        slots = min(slots, held)
    if spec.max_concurrent_trials:
        slots = min(slots, spec.max_concurrent_trials)
    return max(1, int(slots))


def estimate(job: JobPlan, tp: Throughput | None) -> JobPlan:
    """``job`` with its trial-seconds, its longest trial's seconds and GPU-hours from images/s
    ``tp``."""
    if tp is None:
        return job

    def cost(trials: float, train: float, evals: float, checkpoints: float) -> float:
        return trials * tp.setup + train / tp.train + evals / tp.eval + checkpoints * tp.checkpoint

    seconds = cost(job.trials, job.train_images, job.eval_images, job.checkpoints)
    if job.trial_counts:
        longest = max(cost(1, t, v, c) for _, t, v, c in job.trial_counts)
    else:  # the mean trial: the longest one takes at least that
        longest = seconds / max(1, job.trials)
    return replace(
        job, throughput=tp, seconds=seconds, gpu_hours=seconds * job.gpu_per_trial / 3600, longest=longest
    )


def plan_spec(
    spec: SweepSpec,
    *,
    throughput: ThroughputTable | Mapping[tuple[str, str, int, str], Throughput] | None = None,
    gpus: float | None = None,
    cpus: float | None = None,
    gpu_kind: str | None = None,
) -> SweepPlan:
    """Counts and, where ``throughput`` has the (method, backbone, image size, device) entry,
    the estimate of every job of ``spec``; shared stage-1 configs are rows of their own, once
    each. ``gpu_kind``: the device name to look up for GPU trials (default: the one GPU kind of
    the table for that key, ``gpu`` when none). The trials at once are :func:`parallel_slots`
    capped by the sweep's trials.

    Raises:
        ConfigError: on ``--gpus`` / ``--cpus`` (:func:`parallel_slots`); on ``--throughput``
            when, without ``gpu_kind``, the table has entries of two GPU kinds for one GPU job.
    """
    table = throughput if isinstance(throughput, ThroughputTable) else ThroughputTable(dict(throughput or {}))
    rows: list[JobPlan] = []
    seen: dict[str, JobPlan] = {}
    for job in spec.jobs():
        plan, stage1 = job_counts(spec, job)
        rows.append(plan)
        for s1, row in stage1:
            key = json.dumps(s1.to_dict(), sort_keys=True, default=str)
            if key in seen:
                continue
            seen[key] = row
            rows.append(row)
    out = []
    for row in rows:
        device = _resolve_device(table, row, gpu_kind)
        row = replace(row, device=device)
        out.append(estimate(row, table.lookup(row.method, row.backbone, row.image_size, device)))
    # distinct stage-1 rows of one job are merged
    merged: dict[str, JobPlan] = {}
    for row in out:
        if row.name in merged:
            prev = merged[row.name]
            merged[row.name] = replace(
                prev,
                trials=prev.trials + row.trials,
                epochs=prev.epochs + row.epochs,
                train_images=prev.train_images + row.train_images,
                eval_images=prev.eval_images + row.eval_images,
                checkpoints=prev.checkpoints + row.checkpoints,
                seconds=None if prev.seconds is None or row.seconds is None else prev.seconds + row.seconds,
                gpu_hours=None
                if prev.gpu_hours is None or row.gpu_hours is None
                else prev.gpu_hours + row.gpu_hours,
                longest=None
                if prev.longest is None or row.longest is None
                else max(prev.longest, row.longest),
                trial_counts=prev.trial_counts + row.trial_counts,
            )
        else:
            merged[row.name] = row
    jobs = tuple(merged.values())
    trials = sum(j.trials for j in jobs if not j.stage1)
    slots = min(parallel_slots(spec, gpus, cpus), max(1, trials))
    return SweepPlan(jobs, slots, gpus, cpus, _cluster_notes(spec, gpus, cpus) + search_notes(spec, slots))


def _cluster_notes(spec: SweepSpec, gpus: float | None, cpus: float | None) -> tuple[str, ...]:
    """What the plan's cluster size does not say: ``--gpus`` for trials that use no GPU, this
    machine's CPUs (the default) too few for one trial."""
    import os

    gpu, cpu = spec.resources.get("gpu", 0.0), spec.resources.get("cpu", 1.0)
    notes = []
    if gpus is not None and gpu == 0:
        notes.append(f"--gpus {gpus:g} is not used: the trials use no GPU (resources.gpu 0)")
    here = os.cpu_count() or 1
    if gpu == 0 and cpus is None and here < cpu - 1e-9:
        notes.append(
            f"this machine's {here} CPU(s) (the cluster without --cpus) cannot hold one trial of "
            f"resources.cpu {cpu:g}: planned one at a time; give the cluster's --cpus"
        )
    return tuple(notes)


def search_notes(spec: SweepSpec, slots: int) -> tuple[str, ...]:
    """What would spend a search's budget for nothing, said before launching (``plan`` and
    ``validate`` print these notes, ``run`` those of ``slots = 1``; the spec stays valid):

    - ``searcher: optuna`` where none of a job's suggestions can use a result — the sampler's
      random start-up trials, or the configurations the cluster starts before the first result
      (``slots`` shared round the jobs, a configuration's seeds together), cover every
      configuration it will suggest: that job's search is random;
    - ``scheduler: asha`` with a grace period at or above ``max_t``: its only rung is at the
      trials' end (Tune's ASHA), so it stops no trial early;
    - ``scheduler: asha`` where a job's configurations end at or below the grace period in
      ``sched/epoch`` (``schedulable_at`` of the method: COIN's stage 1, a warm-up and the
      epochs before ``select: last``'s counted ones do not count): ASHA never stops those early."""
    from ftsweep.runner import scheduler_options

    configs = {job.name: _point_configs(spec, job) for job in spec.jobs()}  # built once for both
    notes = list(_repeated_notes(spec, configs))
    notes += list(_optuna_notes(spec, slots)) if spec.searcher == "optuna" else []
    opts = scheduler_options(spec)
    if spec.scheduler == "asha" and opts["grace_period"] >= opts["max_t"]:
        notes.append(
            f"asha.grace_period {opts['grace_period']} >= max_t {opts['max_t']} (epochs of "
            "sched/epoch): ASHA stops no trial early; lower it or use scheduler: fifo"
        )
    elif spec.scheduler == "asha":
        notes.extend(_short_trial_notes(spec, opts["grace_period"], configs))
    return tuple(notes)


def _point_configs(spec: SweepSpec, job: Job) -> list[tuple[dict[str, Any], Any]]:
    """Each of :func:`distinct_points` with the job's config dataclass built at it."""
    return [(p, job.config_cls.from_dict({**job.fixed, **p})) for p in distinct_points(spec, job)]


def _repeated_notes(
    spec: SweepSpec, configs: Mapping[str, list[tuple[dict[str, Any], Any]]]
) -> Iterable[str]:
    """:func:`search_notes` of jobs that train a configuration another job trains as well (one
    method on one dataset, every config field alike but where the data lives): two entries of
    one method whose searches share a point. Each of its seeds runs twice; a table counts it
    once (``ftsweep.tables.repeated_runs``)."""
    from ftsweep.config.space import search_axes
    from ftsweep.runs import setting

    first: dict[tuple[str, str, str], str] = {}  # (method, dataset, configuration) → its first job
    repeats: dict[tuple[str, str], list[str]] = {}
    for job in spec.jobs():
        axes = list(search_axes(job.space))
        for point, cfg in configs[job.name]:
            same = repr(sorted((k, repr(setting(k, v))) for k, v in cfg.to_dict().items()))
            owner = first.setdefault((job.method, job.dataset, same), job.name)
            if owner != job.name:
                shown = " ".join(f"{k}={point[k]}" for k in axes) or "its configuration"
                repeats.setdefault((owner, job.name), []).append(shown)
    for (owner, job), points in repeats.items():
        more = f" and {len(points) - 1} more" if len(points) > 1 else ""
        yield (
            f"{job} trains {points[0]}{more}, which {owner} trains as well: each of its "
            f"{len(spec.seeds)} seed(s) is trained twice; leave it out of one of the two searches"
        )


def _short_trial_notes(
    spec: SweepSpec, grace: int, configs: Mapping[str, list[tuple[dict[str, Any], Any]]]
) -> Iterable[str]:
    """:func:`search_notes` of the jobs whose configurations end at sched/epoch <= ``grace``."""
    from ftsweep.config.space import search_axes
    from ftsweep.trial import method_class

    for job in spec.jobs():
        axes = list(search_axes(job.space))
        at = getattr(method_class(job.method), "schedulable_at", None)  # a stage-1 trial: every epoch
        ends: dict[str, int] = {}  # a configuration (its searched values) → its last sched/epoch
        for point, cfg in configs[job.name]:
            name = " ".join(f"{k}={point[k]}" for k in axes) or job.name
            ends[name] = at(cfg, cfg.epochs) if at is not None else cfg.epochs
        short = {name: end for name, end in ends.items() if end <= grace}
        if not short:
            continue
        shown = ", ".join(f"{name} at {end}" for name, end in list(short.items())[:3])
        more = f" and {len(short) - 3} more" if len(short) > 3 else ""
        which = "stops none of its trials" if len(short) == len(ends) else "never stops those"
        first = min(short.values())
        fix = (
            f"asha.grace_period {first - 1} would compare them, or use scheduler: fifo"
            if first >= 2
            else "use scheduler: fifo"
        )
        yield (
            f"{job.name}: {len(short)} of {len(ends)} configurations end at or below "
            f"asha.grace_period {grace} in sched/epoch, the epochs in which the selection can move "
            f"({shown}{more}): ASHA {which} early; {fix}"
        )


def _optuna_notes(spec: SweepSpec, slots: int) -> Iterable[str]:
    """:func:`search_notes` of the jobs of a ``searcher: optuna`` spec."""
    from ftsweep.config.space import count_trials, search_axes
    from ftsweep.optuna_search import startup_trials

    jobs = spec.jobs()
    seeds, sampler = len(spec.seeds), spec.optuna["sampler"]
    # a job's trials in the first round of the round-robin over jobs, in configurations
    at_once = max(1, slots // max(1, len(jobs)) // seeds)
    for job in jobs:
        axes = search_axes(job.space)
        suggestions = count_trials(job.space, "optuna", 1, spec.num_samples)
        if not axes or suggestions < 2:
            continue
        startup = startup_trials(sampler, len(axes), spec.optuna.get("n_startup_trials"))
        if startup >= suggestions:
            yield (
                f"{job.name}: optuna ({sampler}) draws its first {startup} configurations at random "
                f"and suggests {suggestions}: this search is random; set optuna.n_startup_trials "
                f"below {suggestions}"
            )
        elif at_once >= suggestions:
            yield (
                f"{job.name}: optuna ({sampler}) suggests {suggestions} configurations and "
                f"{slots} trial slots start them all before any result: this search is random; "
                f"set max_concurrent_trials below {suggestions * seeds * len(jobs)}"
            )


def _resolve_device(table: ThroughputTable, row: JobPlan, gpu_kind: str | None) -> str:
    """The device ``row`` is looked up for: ``cpu``, ``gpu_kind``, or the table's one GPU kind of
    (``row.method`` or ``*``, backbone, image size); two kinds are ambiguous (``ConfigError``)."""
    if row.device == "cpu":
        return row.device
    if gpu_kind:
        known = sorted({d for *_, d in table.entries if d != "cpu"})
        if gpu_kind not in known:
            raise ConfigError(
                "--gpu-kind",
                gpu_kind,
                f"is not a GPU kind of the throughput table (it has: {', '.join(known) or 'none'})",
            )
        return gpu_kind
    kinds = sorted(
        {
            d
            for m, b, s, d in table.entries
            if d != "cpu" and m in (row.method, ANY) and b == row.backbone and s == row.image_size
        }
    )
    if len(kinds) > 1:
        raise ConfigError(
            "--throughput",
            table.source or kinds,
            f"has entries of {len(kinds)} GPU kinds for {row.method} / {row.backbone} / {row.image_size} "
            f"({', '.join(kinds)}): which one the cluster has is ambiguous; name it with --gpu-kind",
        )
    return kinds[0] if kinds else row.device


# ---- throughput files -----------------------------------------------------------------------
def throughput_entry(
    method: str,
    backbone: str,
    image_size: int,
    device: str,
    train_images_per_s: float,
    eval_images_per_s: float,
    setup_s: float = 0.0,
    checkpoint_s: float = 0.0,
) -> dict[str, Any]:
    """One row of a throughput file (the format in the module docstring)."""
    return {
        "setup_s": float(setup_s),
        "checkpoint_s": float(checkpoint_s),
        "method": method,
        "backbone": backbone,
        "image_size": int(image_size),
        "device": device,
        "train_images_per_s": float(train_images_per_s),
        "eval_images_per_s": float(eval_images_per_s),
    }


#: the keys of a throughput file's entry: required, then optional
ENTRY_KEYS = ("method", "backbone", "image_size", "device", "train_images_per_s", "eval_images_per_s")
OPTIONAL_ENTRY_KEYS = ("setup_s", "checkpoint_s")


def load_throughput(path: str | Path) -> ThroughputTable:
    """Read a throughput file (JSON or YAML, ``{"entries": [...]}`` or a bare list).

    Raises:
        ConfigError: on ``--throughput`` (the file: missing, unreadable, not a list of entries,
            no entries) or ``--throughput entries[i]`` (an entry: a key missing or not one of
            :data:`ENTRY_KEYS` / :data:`OPTIONAL_ENTRY_KEYS`, a rate or size that is not a
            finite number, ``image_size`` <= 0, a method not registered nor ``*``, an unknown
            backbone, the (method, backbone, image size, device) of an earlier entry).
            ``device`` ``cpu`` is read in any case (``CPU``)."""
    import yaml

    from ftsweep.backbones import is_known_backbone, list_backbones
    from ftsweep.registry import methods

    p = Path(path)
    if not p.is_file():
        raise ConfigError("--throughput", str(path), "must be an existing JSON or YAML file")
    try:
        raw = read_yaml(p.read_text(encoding="utf-8"))  # YAML reads JSON too
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError("--throughput", str(path), f"must be valid JSON or YAML (UTF-8): {err}") from None
    rows = raw.get("entries") if isinstance(raw, Mapping) else raw
    if not isinstance(rows, list):
        raise ConfigError("--throughput", str(path), 'must hold {"entries": [...]} or a list of entries')
    if not rows:
        raise ConfigError("--throughput", str(path), "has no entries: give at least one measured entry")
    out: dict[tuple[str, str, int, str], Throughput] = {}
    first: dict[tuple[str, str, int, str], int] = {}
    known_methods = sorted(methods())
    for i, r in enumerate(rows):
        if not isinstance(r, Mapping) or any(k not in r for k in ENTRY_KEYS):
            raise ConfigError(f"--throughput entries[{i}]", r, f"must have keys {', '.join(ENTRY_KEYS)}")
        unknown = sorted(str(k) for k in r if k not in ENTRY_KEYS + OPTIONAL_ENTRY_KEYS)
        if unknown:
            raise ConfigError(
                f"--throughput entries[{i}]",
                r,
                f"has unknown key(s) {', '.join(unknown)}: the keys are {', '.join(ENTRY_KEYS)} and, "
                f"optional, {', '.join(OPTIONAL_ENTRY_KEYS)}",
            )
        names = [r["method"], r["backbone"], r["device"]]
        if not all(isinstance(x, str) and x.strip() for x in names):
            raise ConfigError(
                f"--throughput entries[{i}]", r, "method, backbone and device must be non-empty strings"
            )
        rates = [
            r["train_images_per_s"],
            r["eval_images_per_s"],
            r.get("setup_s", 0.0),
            r.get("checkpoint_s", 0.0),
        ]
        size = r["image_size"]
        if not all(_number(x) and math.isfinite(x) for x in rates) or not (
            _number(size) and math.isfinite(size) and int(size) == size
        ):
            raise ConfigError(
                f"--throughput entries[{i}]",
                r,
                "images/s, setup_s and checkpoint_s must be finite numbers, image_size an integer",
            )
        if size <= 0:
            raise ConfigError(f"--throughput entries[{i}]", r, "image_size must be an integer > 0")
        tp = Throughput(*(float(x) for x in rates))
        if tp.train <= 0 or tp.eval <= 0 or tp.setup < 0 or tp.checkpoint < 0:
            raise ConfigError(
                f"--throughput entries[{i}]", r, "images/s must be > 0, setup_s and checkpoint_s >= 0"
            )
        method, backbone, device = r["method"], r["backbone"], r["device"]
        if method != ANY and method not in known_methods:
            raise ConfigError(
                f"--throughput entries[{i}].method",
                method,
                f"must be a registered method or {ANY}: {', '.join(known_methods)}",
            )
        if not is_known_backbone(backbone):
            raise ConfigError(
                f"--throughput entries[{i}].backbone",
                backbone,
                f"must be a known backbone: {', '.join(list_backbones())} or a timm model name",
            )
        device = "cpu" if device.strip().lower() == "cpu" else device
        key = (method, backbone, int(size), device)
        if key in first:
            raise ConfigError(
                f"--throughput entries[{i}]",
                r,
                f"repeats the method, backbone, image_size and device of entries[{first[key]}]: "
                "keep one measurement of each",
            )
        first[key] = i
        out[key] = tp
    return ThroughputTable(out, str(path))


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def write_throughput(path: str | Path, entries: Iterable[Mapping[str, Any]]) -> None:
    """Write a throughput file (JSON) from :func:`throughput_entry` rows."""
    Path(path).write_text(json.dumps({"entries": list(entries)}, indent=1) + "\n")


# ---- calibration ----------------------------------------------------------------------------
def calibrate(
    spec: SweepSpec,
    *,
    steps: int = 5,
    eval_batches: int = 2,
    device: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ThroughputTable:
    """Images/s of each distinct (method, backbone, image size) of ``spec`` on this machine: the
    Ray-free method class is built with the job's first config (``pretrained: none`` and no
    ``stage1`` — weights do not change the speed), one warm-up epoch of ``steps`` batches, then
    one timed epoch of ``steps`` batches and ``eval_batches`` validation batches; ``setup`` is the
    time the method class took to build (data, model, loaders: what a trial pays once);
    ``checkpoint`` the time to write its checkpoint into a temporary directory and copy that
    directory once (Tune persisting it into the storage path; the copy is local, so a network
    file system's storage path costs more). Shared stage-1
    rows use their stage-2 job's training rate. ``device``: torch device (default the job's).

    Raises:
        ConfigError: on ``--calibrate`` for trials that use a GPU (``resources.gpu`` > 0) on a
            machine where torch sees none, without ``device``: it would time the CPU, which no
            GPU trial's estimate can use.
    """
    import torch

    from ftsweep.methods.base import FineTuner
    from ftsweep.trial import method_class

    gpu = spec.resources.get("gpu", 0.0)
    if gpu > 0 and device is None and not torch.cuda.is_available():
        raise ConfigError(
            "--calibrate",
            True,
            f"the trials use a GPU (resources.gpu {gpu:g}) and this machine has none (torch sees no "
            "CUDA device): calibrating here would time the CPU; give --throughput FILE measured on "
            "the cluster's GPU (calibrate there, or ftsweep.plan.write_throughput)",
        )

    entries: dict[tuple[str, str, int, str], Throughput] = {}
    for job in spec.jobs():
        cfg0 = job.config_cls.from_dict({**job.fixed, **trial_configs(spec, job)[0]})
        size = cfg0.image_size or _dataset_size(cfg0.dataset)
        cls = method_class(job.method)
        config = {**job.fixed, **trial_configs(spec, job)[0], "pretrained": "none",
                  "max_train_batches": steps, "max_eval_batches": eval_batches, **(overrides or {})}  # fmt: skip
        if "stage1" in {f for f in job.config_cls.field_names()}:
            config["stage1"] = None
        if device is not None:
            config["device"] = device
        t0 = time.perf_counter()
        method = cls(config)
        setup_s = time.perf_counter() - t0
        if not isinstance(method, FineTuner):
            continue  # stage 1 as a trial: its rate is looked up like the shared stage 1's
        kind = _device_kind(method.device)
        key = (job.method, cfg0.backbone, int(size), kind)
        if key in entries:
            continue
        method.train_epoch()  # warm-up: loaders, kernels
        method.epoch += 1
        epochs, train_images, _ = _trial_counts(cls, method.cfg)
        train_images //= epochs  # one epoch of ``steps`` batches
        t0 = time.perf_counter()
        method.train_epoch()
        _sync(method.device)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        method.evaluate_split("val")
        _sync(method.device)
        eval_s = time.perf_counter() - t0
        val = _capped(split_sizes(method.cfg)["val"], method.cfg.eval_batch_size, eval_batches)
        val = min(val, len(method.data.val))
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            Path(tmp, "trial").mkdir()
            method.save_checkpoint(str(Path(tmp, "trial")))
            shutil.copytree(Path(tmp, "trial"), Path(tmp, "storage"))
            checkpoint_s = time.perf_counter() - t0
        entries[key] = Throughput(train_images / train_s, val / eval_s, setup_s, checkpoint_s)
        has_stage1 = any(p.get("stage1") is not None for p in trial_configs(spec, job)) or job.fixed.get(
            "stage1"
        )
        if (STAGE1_METHOD, cfg0.backbone, int(size), kind) not in entries and has_stage1:
            entries[(STAGE1_METHOD, cfg0.backbone, int(size), kind)] = entries[key]
    return ThroughputTable(entries)


def _device_kind(device: Any) -> str:
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"


def _sync(device: Any) -> None:
    import torch

    if getattr(device, "type", "") == "cuda":
        torch.cuda.synchronize(device)


def table_entries(table: ThroughputTable) -> list[dict[str, Any]]:
    """The rows of ``table`` for :func:`write_throughput`."""
    return [
        throughput_entry(m, b, s, d, tp.train, tp.eval, tp.setup, tp.checkpoint)
        for (m, b, s, d), tp in table.entries.items()
    ]


# ---- text -----------------------------------------------------------------------------------
def _hms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _num(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:g}"


#: how the wall-time line qualifies itself: epochs are the most a trial runs, test passes the least
BOUND = "no early stopping foreseen; test counted once a trial, more under select: best_val"


def format_plan(plan: SweepPlan) -> str:
    """A text table: one row per job (and shared stage 1), then the totals and the wall time."""
    head = (
        "job",
        "trials",
        "epochs",
        "train img",
        "eval img",
        "ckpts",
        "device",
        "img/s train",
        "trials' time",
        "GPU-h",
    )
    rows = [head]
    for j in plan.jobs:
        rate = "—" if j.throughput is None else f"{j.throughput.train:.4g}"
        gh = "—" if j.gpu_hours is None else f"{j.gpu_hours:.3g}"
        rows.append((j.name + (" (shared)" if j.stage1 else ""), str(j.trials), str(j.epochs),
                     _num(j.train_images), _num(j.eval_images), str(j.checkpoints), j.device, rate, _hms(j.seconds),
                     gh))  # fmt: skip
    gh = "—" if plan.gpu_hours is None else f"{plan.gpu_hours:.3g}"
    rows.append(("total", str(plan.trials), str(plan.epochs), _num(plan.train_images), _num(plan.eval_images),
                 str(plan.checkpoints), "", "", _hms(plan.seconds), gh))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in rows]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(len(lines) - 1, "  ".join("-" * w for w in widths))
    where = f"{plan.slots} trial(s) at once"
    uses_gpu = any(j.gpu_per_trial > 0 for j in plan.jobs)
    if plan.gpus is not None and uses_gpu:  # --gpus of CPU trials: a note says it is not used
        where += f" on {plan.gpus:g} GPU(s)"
    if plan.cpus is not None:
        where += f" {'/' if plan.gpus is not None and uses_gpu else 'on'} {plan.cpus:g} CPU(s)"
    missing = [j.name for j in plan.jobs if j.throughput is None]
    tail = f"wall time ≈ {_hms(plan.wall_seconds)} with {where}"
    if plan.longest is not None:
        tail += f" (at least the longest trial, {_hms(plan.longest)}; {BOUND})"
    else:
        tail += f" ({BOUND})"
    if missing:
        tail += f"\nno throughput for: {', '.join(missing)} (give --throughput FILE or --calibrate)"
    tail += "".join(f"\nnote: {n}" for n in plan.notes)
    return "\n".join(lines) + "\n" + tail
