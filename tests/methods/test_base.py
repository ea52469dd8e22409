"""FineTuner's early stopping (``early_stop_patience``) on a scripted validation-loss
sequence: the trial ends at the right epoch with ``done``, final metrics are computed on that
epoch, selection stays on ``val/acc``, and save → restore continues with the stopping state."""

from __future__ import annotations

import pytest

from ftsweep.config import ConfigError, TrainConfig
from ftsweep.methods.ce import CEMethod

# val/loss is lowest at epoch 2; epochs 3 and 4 do not decrease it -> patience 2 stops at 4.
VAL_LOSS = [0.9, 0.7, 0.8, 0.75, 0.6, 0.5, 0.4, 0.3]
# val/acc is highest at epoch 3: selection (best/epoch) must follow accuracy, not the loss.
VAL_ACC = [50.0, 60.0, 70.0, 65.0, 80.0, 85.0, 90.0, 95.0]
CFG = {
    "pretrained": "none",
    "device": "cpu",
    "epochs": 8,
    "batch_size": 32,
    "max_train_batches": 1,
    "early_stop_patience": 2,
}


def scripted(config: dict | None = None):
    """A ``ce`` trainable whose validation metrics follow VAL_LOSS / VAL_ACC by epoch."""
    t = CEMethod({**CFG, **(config or {})})
    real = t.evaluate_split
    finals: list[int] = []

    def evaluate_split(split: str) -> dict[str, float]:
        if split != "val":
            return real(split)
        return {"val/acc": VAL_ACC[t.epoch], "val/mpa": VAL_ACC[t.epoch], "val/loss": VAL_LOSS[t.epoch]}

    def epoch_metrics(last: bool) -> dict[str, float]:
        if last:
            finals.append(t.epoch)
        return {}

    t.evaluate_split = evaluate_split
    t.epoch_metrics = epoch_metrics
    return t, finals


def test_stops_when_val_loss_has_not_decreased_for_patience_epochs() -> None:
    t, finals = scripted()
    results = [t.step() for _ in range(4)]
    assert [bool(r.get("done", False)) for r in results] == [False, False, False, True]
    assert [r["early_stop/stopped"] for r in results] == [0.0, 0.0, 0.0, 1.0]
    assert [r["early_stop/best_epoch"] for r in results] == [1.0, 2.0, 2.0, 2.0]
    assert finals == [4], "final metrics on the stopping epoch only"
    assert results[-1]["best/epoch"] == 3.0 and results[-1]["best/val/acc"] == 70.0


def test_off_by_default_and_trains_all_epochs() -> None:
    assert TrainConfig().early_stop_patience is None
    t, finals = scripted({"early_stop_patience": None, "epochs": 5})
    results = [t.step() for _ in range(5)]
    assert [bool(r.get("done", False)) for r in results] == [False] * 4 + [True]
    assert not any(k.startswith("early_stop/") for k in results[-1])
    assert finals == [5]


def test_save_restore_keeps_the_stopping_state(tmp_path) -> None:
    a, _ = scripted()
    for _ in range(3):
        a.step()
    a.save_checkpoint(str(tmp_path))
    expected = a.step()
    b, finals = scripted()
    b.load_checkpoint(str(tmp_path))
    got = b.step()  # a fresh stopper would see epoch 4 as its best and not stop
    assert expected["done"] is True and got.get("done") is True
    assert got["early_stop/best_epoch"] == expected["early_stop/best_epoch"] == 2.0
    assert got["epoch"] == expected["epoch"] == 4
    assert finals == [4]


def test_bad_patience_is_rejected() -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict({"early_stop_patience": 0})
    assert err.value.field == "early_stop_patience"


def test_image_size_feeds_small_images_to_a_224_vit() -> None:
    """A ViT-B/16-style model refuses 32-px input; ``image_size: 224`` up-samples every view."""
    cfg = {
        "dataset": "digits",
        "backbone": "vit_tiny_patch16_224",
        "pretrained": "none",
        "image_size": 224,
        "epochs": 1,
        "batch_size": 4,
        "eval_batch_size": 8,
        "max_train_batches": 1,
        "max_eval_batches": 1,
        "device": "cpu",
    }
    trial = CEMethod(cfg)
    x, _, _ = trial.data.labeled[0]
    assert x.shape == (3, 224, 224)
    result = trial.step()
    assert result["epoch"] == 1 and 0.0 <= result["val/acc"] <= 100.0


def test_a_kept_loader_reseeded_with_its_own_seed_gives_its_first_pass_again() -> None:
    """``FineTuner.loader`` keeps a loader per key; asked again for the same seed (an epoch
    repeated after a restore in the same process) it replays that seed's batches, not the next
    pass's."""
    from ftsweep.methods.ce import CEMethod

    m = CEMethod({"pretrained": "none", "device": "cpu", "epochs": 2, "max_train_batches": 1})

    def first_batches(seed: int) -> list:
        loader = m.loader("probe", m.data.labeled, batch_size=8, shuffle=True, seed=seed)
        # the order (labels) and the views (pixel sums) of the first batches
        return [(b[1].tolist(), round(float(b[0].sum()), 3)) for _, b in zip(range(3), loader, strict=False)]

    a = first_batches(5)
    assert first_batches(5) == a  # the same seed: the same order
    assert first_batches(6) != a and first_batches(5) == a


def test_the_schedule_counts_the_step_of_the_batches_left_over() -> None:
    # 5 batches, grad_accum 2: steps after batches 2, 4 and the leftover 5th, 3 an epoch. The
    # schedule was sized ⌊5 / 2⌋ = 2 an epoch, so the cosine reached 0 at 2/3 of training
    from ftsweep.engine.optim import lr_factor

    t = CEMethod(
        {
            **CFG,
            "epochs": 2,
            "early_stop_patience": None,
            "max_train_batches": 5,
            "batch_size": 4,
            "grad_accum": 2,
        }
    )
    assert t.steps_per_epoch() == 5 and t.optimizer_steps_per_epoch() == 3
    base = t.cfg.lr
    t.step()  # one epoch: 3 optimiser steps of 6
    assert t.scheduler.last_epoch == 3
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(base * lr_factor(3, total_steps=6))
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(base * 0.5)  # half way down the cosine
