"""ftsweep.plan's per-trial counts against what a real trial puts through its backbone: tiny
digits trials run epoch by epoch, images counted by a forward pre-hook on the backbone (train
mode: training image-views; eval mode: evaluation images). Each case is one of the counts the
plan once got wrong (a source stream, evaluation passes beside validation and selection)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ftsweep.plan import _trial_counts
from ftsweep.registry import methods
from ftsweep.trial import method_class

BASE = {"pretrained": "none", "device": "cpu", "num_workers": 0, "epochs": 3, "batch_size": 16}
UOT = {
    **methods()["uot_selection"].smoke,
    **BASE,
    "dataset": "digits_target",
    "source_dataset": "digits_source",
    "labels_per_class": 4,
    "k": 5,
    "batch_size": 8,
    "schedule": "cosine",
    "milestones": [],
}


def _measured(method: str, config: dict) -> tuple[int, int, int]:
    """``(epochs, train_images, eval_images)`` a trial of ``config`` really runs."""
    trial = method_class(method)(config)
    seen = {True: 0, False: 0}

    def count(module: torch.nn.Module, args: tuple) -> None:
        seen[module.training] += int(args[0].shape[0])

    trial.model["backbone"].register_forward_pre_hook(count)
    epochs = 0
    while epochs < trial.cfg.epochs:
        epochs += 1
        if trial.step().get("done"):
            break
    return epochs, seen[True], seen[False]


CASES = [
    # a leftover batch under grad_accum; S_Dbw of the validation features at the last epoch
    ("ce", {"labels_per_class": 9, "grad_accum": 2, "feature_metrics": ["s_dbw"], "select": "last"}),
    # stage 1 (⌊0.34·3⌋ = 1 epoch) never tests: median_last_k over 3 epochs tests twice; S_Dbw
    # passes over validation at stage 1's end and the last epoch
    ("coin", {"alpha": 0.34, "select": "median_last_k", "select_k": 3, "max_train_batches": 2}),
    # the last epoch's test features (isotropy), beside the test pass of the selection
    (
        "schane",
        {"select": "last", "early_stop_patience": None, "max_train_batches": 2, "max_eval_batches": 2},
    ),
    # a source batch of batch_size joins every target batch, the partial last one included
    ("uot_selection", UOT),
    ("uot_selection", {**UOT, "source_labels": False}),  # a weak and a strong view per source image
]


@pytest.mark.parametrize(("method", "config"), CASES, ids=[f"{m}-{i}" for i, (m, _) in enumerate(CASES)])
def test_the_plan_counts_what_the_trial_puts_through_its_backbone(
    method: str, config: dict, tmp_path: Path
) -> None:
    config = {**BASE, "cache_dir": str(tmp_path / "cache"), **config}
    cls = method_class(method)
    assert _trial_counts(cls, cls.config_cls.from_dict(config)) == _measured(method, config)
