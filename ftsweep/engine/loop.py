"""The train/eval loop shared by every method."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ftsweep.metrics import mean_per_class_accuracy, top1_accuracy

__all__ = [
    "BestTracker",
    "EarlyStopping",
    "NonFiniteLossError",
    "StepOutput",
    "cycle",
    "epoch_seed",
    "evaluate",
    "extract_features",
    "make_loader",
    "resolve_device",
    "seed_everything",
    "to_device",
    "train_epoch",
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


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader whose order and worker seeds come from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=min(batch_size, len(dataset)) if drop_last else batch_size,
        shuffle=shuffle,
        generator=gen,
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
        persistent_workers=False,
    )


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
) -> dict[str, float]:
    """One pass over ``batches``: ``loss, logs = step_fn(batch)``, backward, step.

    Gradients are accumulated over ``grad_accum`` batches (the loss is divided accordingly);
    ``after_step`` runs after each optimiser step (e.g. an EMA update). A NaN or inf loss
    raises :class:`NonFiniteLossError` before any update from that batch.

    Returns:
        The batch-averaged logs plus ``loss``.
    """
    params = list(params)
    totals: dict[str, float] = {}
    n = 0
    optimizer.zero_grad(set_to_none=True)
    pending = 0
    for i, batch in enumerate(batches):
        if max_batches is not None and i >= max_batches:
            break
        loss, logs = step_fn(batch)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NonFiniteLossError(f"non-finite training loss {value} at batch {i}")
        (loss / grad_accum).backward()
        pending += 1
        if pending == grad_accum:
            _optimizer_step(optimizer, scheduler, params, grad_clip, after_step)
            pending = 0
        n += 1
        totals["loss"] = totals.get("loss", 0.0) + value
        for k, v in logs.items():
            v = float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
            totals[k] = totals.get(k, 0.0) + v
    if pending:
        _optimizer_step(optimizer, scheduler, params, grad_clip, after_step)
    return {k: v / max(n, 1) for k, v in totals.items()}


def _optimizer_step(optimizer, scheduler, params, grad_clip, after_step) -> None:  # noqa: ANN001
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if scheduler is not None:
        scheduler.step()
    if after_step is not None:
        after_step()


def _autocast(device: torch.device, amp: bool):  # noqa: ANN202
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


@torch.no_grad()
def evaluate(
    predict: Callable[[torch.Tensor], torch.Tensor],
    loader: Iterable,
    device: torch.device,
    *,
    max_batches: int | None = None,
    amp: bool = False,
) -> dict[str, float]:
    """Top-1, mean per-class accuracy and CE loss of ``predict(x) -> logits`` over ``loader``.

    Returns:
        ``{"acc", "mpa", "loss"}`` with accuracies in percent.
    """
    ys, preds, loss_sum, n = [], [], 0.0, 0
    for i, (x, y, _) in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        x, y = x.to(device), y.to(device)
        with _autocast(device, amp):
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
