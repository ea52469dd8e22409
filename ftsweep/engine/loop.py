"""The train/eval loop shared by every method."""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from ftsweep.config.base import PRECISIONS
from ftsweep.metrics import mean_per_class_accuracy, top1_accuracy

__all__ = [
    "BestTracker",
    "EarlyStopping",
    "NonFiniteLossError",
    "PRECISIONS",
    "StepOutput",
    "autocast",
    "cycle",
    "epoch_seed",
    "evaluate",
    "extract_features",
    "make_loader",
    "reseed",
    "resolve_channels_last",
    "resolve_device",
    "resolve_num_workers",
    "resolve_precision",
    "seed_everything",
    "to_device",
    "train_epoch",
    "trial_cpus",
]


class NonFiniteLossError(FloatingPointError):
    """A NaN or inf loss: the trial stops with this reason."""


StepOutput = tuple[torch.Tensor, dict[str, float | torch.Tensor]]


def resolve_device(device: str) -> torch.device:
    """``auto`` → the first CUDA device when present, else CPU; CUDA asked for but absent raises."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device: {device!r} — CUDA is not available on this machine; use cpu or auto")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """A per-epoch seed, so an epoch's randomness depends only on (seed, epoch).

    Restoring a checkpoint then reproduces the next epoch exactly without saving RNG states.
    """
    return (seed * 1_000_003 + epoch * 7_919 + 12_345) % 2**63


def trial_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by ``OMP_NUM_THREADS`` when set
    (Ray Tune sets it to the trial's CPU count)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 0:
        cpus = min(cpus, int(omp))
    return max(1, cpus)


def resolve_num_workers(num_workers: int | str) -> int:
    """``auto`` → the trial's CPUs minus one (the main process keeps one); an int as it is."""
    if num_workers == "auto":
        return trial_cpus() - 1
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be 'auto' or an int >= 0, got {num_workers!r}")
    return num_workers


class _SeededSampler(Sampler):
    """Yields ``(index, item_seed)``: an order (shuffled or not) and one seed per item, both from
    a generator seeded by the loader's ``generator.initial_seed()`` and the number of passes since
    it was last seeded. An item's view then depends only on the loader's seed and the item's
    position — not on the number of workers, on which worker loads it, or on what else drew from
    the loader's generator (a fresh and a re-seeded persistent loader give the same batches).

    With ``num_samples``, a pass is that many items: successive orders of the ``n`` items
    (successive permutations when shuffled), cut after ``num_samples``."""

    def __init__(
        self, n: int, shuffle: bool, generator: torch.Generator, num_samples: int | None = None
    ) -> None:
        self.n, self.shuffle, self.generator = n, shuffle, generator
        self.num_samples = n if num_samples is None else num_samples
        self._seed: int | None = None
        self._pass = 0

    def __len__(self) -> int:
        return self.num_samples

    def restart(self) -> None:
        """Count passes from 0 again at the next pass, even if the seed is the same."""
        self._seed = None

    def __iter__(self) -> Iterator[tuple[int, int]]:
        seed = self.generator.initial_seed()
        if seed != self._seed:
            self._seed, self._pass = seed, 0
        gen = torch.Generator().manual_seed((seed * 1_000_003 + self._pass * 7_919) % 2**63)
        self._pass += 1
        rounds = -(-self.num_samples // self.n) if self.n else 0
        orders = [torch.randperm(self.n, generator=gen) if self.shuffle else torch.arange(self.n)]
        orders += [
            torch.randperm(self.n, generator=gen) if self.shuffle else orders[0] for _ in range(rounds - 1)
        ]
        order = torch.cat(orders)[: self.num_samples]
        seeds = torch.randint(2**62, (self.num_samples,), generator=gen)
        return iter(zip(order.tolist(), seeds.tolist(), strict=True))


class _SeededItems(Dataset):
    """``dataset[index]`` under ``torch.manual_seed(item_seed)``; in the main process the global
    RNG state is restored afterwards, so the training step's randomness is not disturbed."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> object:
        index, seed = key
        if get_worker_info() is not None:
            torch.manual_seed(seed)
            return self.dataset[index]
        state = torch.get_rng_state()
        try:
            torch.manual_seed(seed)
            return self.dataset[index]
        finally:
            torch.set_rng_state(state)


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    num_workers: int | str = 0,
    drop_last: bool = False,
    pin_memory: bool | None = None,
    persistent_workers: bool = False,
    prefetch_factor: int = 4,
    num_samples: int | None = None,
) -> DataLoader:
    """A DataLoader whose order and per-item augmentation seeds come from ``seed``.

    Each item is loaded under its own torch seed (drawn with the order from the loader's
    ``generator``), so the same seed gives the same batches with 0, 1 or 8 workers, and
    re-seeding ``loader.generator`` (as :func:`cycle` does) re-seeds order and views even with
    ``persistent_workers``.

    Args:
        num_workers: worker processes, or ``auto`` (see :func:`resolve_num_workers`).
        pin_memory: page-locked batches for asynchronous host-to-GPU copies; None = when CUDA
            is available.
        persistent_workers: keep the workers between epochs (only with workers; the caller
            keeps the loader and re-seeds its ``generator`` each epoch).
        prefetch_factor: batches each worker loads ahead (only with workers).
        num_samples: items per pass (None: ``len(dataset)``); more than the dataset draws
            successive orders of it, one after the other (a fresh permutation each when
            ``shuffle``), so every item appears once per permutation and a small set fills
            ``batch_size`` by repetition (FixMatch's expanded labeled stream). With
            ``drop_last``, ``num_samples = steps · batch_size`` gives exactly ``steps`` batches
            of exactly ``batch_size``.
    """
    workers = resolve_num_workers(num_workers)
    gen = torch.Generator().manual_seed(seed)
    extra = {"persistent_workers": persistent_workers, "prefetch_factor": prefetch_factor} if workers else {}
    if num_samples is not None and (num_samples < 0 or (num_samples and not len(dataset))):
        raise ValueError(f"num_samples must be >= 0 and needs a non-empty dataset, got {num_samples}")
    per_pass = len(dataset) if num_samples is None else num_samples
    return DataLoader(
        _SeededItems(dataset),
        batch_size=max(1, min(batch_size, per_pass)) if drop_last else batch_size,
        sampler=_SeededSampler(len(dataset), shuffle, gen, num_samples),
        generator=gen,
        num_workers=workers,
        drop_last=drop_last,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        **extra,
    )


def reseed(loader: DataLoader, seed: int) -> DataLoader:
    """Re-seed a :func:`make_loader` loader (kept for its persistent workers): its next pass gives
    the batches of a fresh ``make_loader(..., seed=seed)``, also when ``seed`` is the seed it
    already has (``loader.generator.manual_seed`` alone cannot tell that apart from no
    re-seeding, and would go on to the next pass's orders and views)."""
    loader.generator.manual_seed(seed)
    if isinstance(loader.sampler, _SeededSampler):
        loader.sampler.restart()
    return loader


def cycle(loader: Iterable, seed: int) -> Iterator:
    """Iterate ``loader`` forever (e.g. the labeled stream beside a longer unlabeled one)."""
    rounds = 0
    while True:
        gen = getattr(loader, "generator", None)
        if gen is not None:
            gen.manual_seed(seed + rounds)
        yield from loader
        rounds += 1


def to_device(obj: object, device: torch.device) -> object:
    """Move tensors (possibly nested in lists/tuples) to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, list | tuple):
        return type(obj)(to_device(o, device) for o in obj)
    return obj


_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(precision: str, device: torch.device | str, amp: bool | None = None) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for ``precision`` on ``device``.

    ``auto`` is bf16 on a CUDA device that supports it (fp16 on older GPUs) and fp32 elsewhere;
    an explicit value is honoured on any device. The older ``amp`` flag maps onto it: ``amp:
    false`` with ``precision: auto`` is fp32, ``amp: true`` is ``auto``'s mixed precision on CUDA.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    device = torch.device(device)
    if precision != "auto":
        return precision
    if amp is False or device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def resolve_channels_last(setting: bool | str, device: torch.device | str, model: nn.Module) -> bool:
    """``auto`` → on for a convolutional network on CUDA (more than one ``Conv2d``: a ViT's single
    patch embedding does not count); a bool as it is."""
    if setting != "auto":
        return bool(setting)
    convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    return torch.device(device).type == "cuda" and convs > 1


def autocast(device: torch.device | str, precision: str) -> AbstractContextManager:
    """Autocast to ``precision`` (``bf16``/``fp16``) on ``device``'s type; ``fp32`` does nothing."""
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=_DTYPES[precision])


def train_epoch(
    step_fn: Callable[[object], StepOutput],
    batches: Iterable,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    *,
    params: Iterable[nn.Parameter] = (),
    grad_accum: int = 1,
    grad_clip: float | None = None,
    max_batches: int | None = None,
    after_step: Callable[[], None] | None = None,
    precision: str = "fp32",
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """One pass over ``batches``: ``loss, logs = step_fn(batch)``, backward, step.

    Gradients are accumulated over ``grad_accum`` batches (the loss is divided accordingly);
    ``after_step`` runs after each optimiser step (e.g. an EMA update). A NaN or inf loss
    raises :class:`NonFiniteLossError` before any update from that batch. ``step_fn`` runs
    under :func:`autocast` to ``precision`` (resolved: ``fp32``/``bf16``/``fp16``) on
    ``device``'s type; fp16 scales the loss with a ``GradScaler`` (a step whose gradients
    overflow is skipped and the scale lowered, as torch's AMP recipe does).

    Returns:
        The batch-averaged logs plus ``loss``.
    """
    params = list(params)
    totals: dict[str, float] = {}
    n = 0
    dev_type = torch.device(device).type
    scaler = torch.amp.GradScaler(dev_type) if precision == "fp16" else None
    optimizer.zero_grad(set_to_none=True)
    pending = 0
    for i, batch in enumerate(batches):
        if max_batches is not None and i >= max_batches:
            break
        with autocast(device, precision):
            loss, logs = step_fn(batch)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NonFiniteLossError(f"non-finite training loss {value} at batch {i}")
        scaled = loss / grad_accum
        (scaler.scale(scaled) if scaler is not None else scaled).backward()
        pending += 1
        if pending == grad_accum:
            _optimizer_step(optimizer, scheduler, params, grad_clip, after_step, scaler)
            pending = 0
        n += 1
        totals["loss"] = totals.get("loss", 0.0) + value
        for k, v in logs.items():
            v = float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
            totals[k] = totals.get(k, 0.0) + v
    if pending:
        _optimizer_step(optimizer, scheduler, params, grad_clip, after_step, scaler)
    return {k: v / max(n, 1) for k, v in totals.items()}


def _optimizer_step(optimizer, scheduler, params, grad_clip, after_step, scaler=None) -> None:  # noqa: ANN001
    if scaler is not None:
        scaler.unscale_(optimizer)
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if scheduler is not None:
        scheduler.step()
    if after_step is not None:
        after_step()


@torch.no_grad()
def evaluate(
    predict: Callable[[torch.Tensor], torch.Tensor],
    loader: Iterable,
    device: torch.device,
    *,
    max_batches: int | None = None,
    amp: bool = False,
    precision: str | None = None,
) -> dict[str, float]:
    """Top-1, mean per-class accuracy and CE loss of ``predict(x) -> logits`` over ``loader``.

    ``predict`` runs under :func:`autocast` to ``precision`` (resolved; None = ``bf16`` on CUDA
    when ``amp``, else ``fp32``); logits are compared in float32.

    Returns:
        ``{"acc", "mpa", "loss"}`` with accuracies in percent.
    """
    if precision is None:
        precision = "bf16" if amp and torch.device(device).type == "cuda" else "fp32"
    ys, preds, loss_sum, n = [], [], 0.0, 0
    for i, (x, y, _) in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast(device, precision):
            logits = predict(x).float()
        loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
        n += len(y)
        ys.append(y.cpu())
        preds.append(logits.argmax(1).cpu())
    y_true, y_pred = torch.cat(ys).numpy(), torch.cat(preds).numpy()
    return {
        "acc": 100.0 * top1_accuracy(y_true, y_pred),
        "mpa": 100.0 * mean_per_class_accuracy(y_true, y_pred),
        "loss": loss_sum / max(n, 1),
    }


@torch.no_grad()
def extract_features(
    encode: Callable[[torch.Tensor], torch.Tensor],
    data: Iterable | Dataset,
    device: str | torch.device = "cpu",
    *,
    batch_size: int = 256,
    num_workers: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, D) float32 and labels (N,) int64 of ``encode(x)`` over ``data``, without
    gradients, in data order.

    Args:
        encode: maps an image batch with shape (B, C, H, W) to features (B, D). An
            ``nn.Module`` runs in eval mode and gets its train/eval mode back afterwards; a
            function is called as it is (set the modules it uses to eval mode first).
        data: a loader (any iterable of batches) or a ``Dataset``, read in order by a
            DataLoader of ``batch_size`` and ``num_workers``. A batch or item is ``(x, y)`` or
            ``(x, y, index)`` (a :class:`~ftsweep.data.ViewDataset`); only ``x`` and ``y`` are read.
        device: where ``encode`` runs.
        batch_size, num_workers: of the DataLoader built when ``data`` is a ``Dataset``.

    Raises:
        ValueError: ``encode`` does not return a 2-D batch of matching size, ``data`` is empty,
            or ``batch_size`` < 1.
    """
    if isinstance(data, Dataset):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        data = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    module = encode if isinstance(encode, nn.Module) else None
    was_training = module.training if module is not None else False
    if module is not None:
        module.eval()
    feats: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    try:
        for x, y, *_ in data:
            out = encode(x.to(device))
            if out.dim() != 2 or out.shape[0] != x.shape[0]:
                raise ValueError(
                    f"model must map (B, C, H, W) to (B, D) but returned shape {tuple(out.shape)} "
                    f"for a batch of {x.shape[0]}"
                )
            feats.append(out.detach().to("cpu", torch.float32).numpy())
            labels.append(torch.as_tensor(y).to("cpu", torch.int64).numpy().reshape(-1))
    finally:
        if module is not None:
            module.train(was_training)
    if not feats:
        raise ValueError("dataset is empty")
    return np.concatenate(feats, axis=0), np.concatenate(labels, axis=0)


@dataclass
class BestTracker:
    """Model selection on a validation metric (ties keep the earlier epoch).

    Attributes:
        metric: the key compared (``val/acc``).
        mode: ``max`` or ``min``.
    """

    metric: str = "val/acc"
    mode: str = "max"
    best: float | None = None
    epoch: int = 0
    selected: dict[str, float] = field(default_factory=dict)

    def improved(self, metrics: dict[str, float]) -> bool:
        value = metrics[self.metric]
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def update(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Record ``metrics`` of ``epoch`` if it beats the best so far; True when it does."""
        if not self.improved(metrics):
            return False
        self.best, self.epoch, self.selected = metrics[self.metric], epoch, dict(metrics)
        return True

    def state_dict(self) -> dict:
        return {"best": self.best, "epoch": self.epoch, "selected": dict(self.selected)}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.epoch, self.selected = (
            state["best"],
            state["epoch"],
            dict(state["selected"]),
        )


@dataclass
class EarlyStopping:
    """Stop training once ``metric`` has not improved for ``patience`` epochs.

    SCHaNe App. A.2: "terminating the training when the validation loss does not decrease for
    10 epochs" — ``metric="val/loss"``, ``mode="min"``, ``patience=10``. An epoch that only ties
    the best value does not count as an improvement.

    Attributes:
        patience: epochs without improvement after which :meth:`update` returns True (>= 1).
        metric: the key watched; mode: ``min`` or ``max``.
        tracker: the best value and its epoch so far.
    """

    patience: int
    metric: str = "val/loss"
    mode: str = "min"
    tracker: BestTracker = field(init=False)

    def __post_init__(self) -> None:
        assert self.patience >= 1, f"patience must be >= 1 but is {self.patience}"
        self.tracker = BestTracker(self.metric, self.mode)

    def update(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Record ``metrics`` of ``epoch`` (1-based); True when training should stop now."""
        self.tracker.update(epoch, metrics)
        return epoch - self.tracker.epoch >= self.patience

    def state_dict(self) -> dict:
        return self.tracker.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.tracker.load_state_dict(state)
