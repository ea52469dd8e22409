"""SCHaNe Trainable: each Table 3 objective against a float64 brute-force recomputation on a fixed
two-view batch, two real AutoAugment views, few-shot and isotropy against independently extracted
test features, gradients, save/restore and config errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ftsweep.config import ConfigError
from ftsweep.methods.schane import SchaneConfig, SchaneMethod
from ftsweep.metrics import fewshot_eval, isotropy_score
from ftsweep.registry import methods

BASE = {"pretrained": "none", "device": "cpu", "batch_size": 16, "max_train_batches": 2, "epochs": 2}
LABELS = [0, 0, 1, 1, 1, 2, 3]  # 2 and 3 have a positive only through their other view
LAM, TAU = 0.3, 0.02


def make(**cfg):
    return SchaneMethod({**BASE, **cfg})


def two_view_batch(labels: list[int], seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randn(len(labels), 3, 32, 32, generator=g)
    x2 = torch.randn(len(labels), 3, 32, 32, generator=g)
    return (x1, x2), torch.tensor(labels), torch.arange(len(labels))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def sim(z: np.ndarray, i: int, k: int) -> float:
    return float(z[i] @ z[k]) / TAU


def brute_scln(z: np.ndarray, y: list[int], variant: str) -> float:
    """SCHaNe Eq. 3-4 as loops (our paper reading / the official form, docs/deviations.md)."""
    n, per_anchor = len(y), []
    for i in range(n):
        pos = [p for p in range(n) if p != i and y[p] == y[i]]
        neg = [k for k in range(n) if y[k] != y[i]]
        if not pos:
            continue
        norm = sum(math.exp(sim(z, i, k)) for k in neg)
        beta = {k: math.exp(sim(z, i, k)) * len(neg) / norm for k in neg}
        weighted_neg = sum(beta[k] * math.exp(sim(z, i, k)) for k in neg)
        if variant == "paper":
            denom = sum(math.exp(sim(z, i, p)) for p in pos) + weighted_neg
            per_anchor.append(-sum(math.log(math.exp(sim(z, i, p)) / denom) for p in pos) / len(pos))
        else:
            mean_pos = sum(math.exp(sim(z, i, p)) for p in pos) / len(pos)
            per_anchor.append(-math.log(mean_pos / (mean_pos + weighted_neg)))
    return sum(per_anchor) / len(per_anchor)


def brute_supcon(z: np.ndarray, y: list[int]) -> float:
    n, per_anchor = len(y), []
    for i in range(n):
        pos = [p for p in range(n) if p != i and y[p] == y[i]]
        denom = sum(math.exp(sim(z, i, k)) for k in range(n) if k != i)
        if pos:
            per_anchor.append(-sum(math.log(math.exp(sim(z, i, p)) / denom) for p in pos) / len(pos))
    return sum(per_anchor) / len(per_anchor)


def brute_nt_xent(z: np.ndarray) -> float:
    n2 = len(z)
    b = n2 // 2
    total = 0.0
    for i in range(n2):
        partner = (i + b) % n2
        denom = sum(math.exp(sim(z, i, k)) for k in range(n2) if k != i)
        total += -math.log(math.exp(sim(z, i, partner)) / denom)
    return total / n2


def brute_ce(f: np.ndarray, y: list[int], w: np.ndarray, b: np.ndarray) -> float:
    total = 0.0
    for fi, yi in zip(f, y, strict=True):
        logits = w @ fi + b
        total += math.log(sum(math.exp(v) for v in logits)) - logits[yi]
    return total / len(y)


@pytest.fixture(scope="module")
def trainable():
    t = make(lambda_=LAM, temperature=TAU)
    t.model.eval()  # deterministic BatchNorm: the recomputation does its own forward
    yield t


@pytest.mark.parametrize(
    ("objective", "variant"),
    [
        ("schane", "paper"),
        ("schane", "official"),
        ("ce_supcon", "paper"),
        ("ce_simclr", "paper"),
        ("ce", "paper"),
    ],
)
def test_step_loss_matches_brute_force(trainable, objective, variant):
    import dataclasses

    t = trainable
    t.cfg = dataclasses.replace(t.cfg, objective=objective, scln_variant=variant)
    batch = two_view_batch(LABELS)
    (x1, x2), y, _ = batch
    y2 = LABELS + LABELS
    with torch.no_grad():
        f = _np(t.model["backbone"](torch.cat([x1, x2])))
    z = f / np.linalg.norm(f, axis=1, keepdims=True)
    ce = brute_ce(f, y2, _np(t.model["classifier"].weight), _np(t.model["classifier"].bias))
    con = {
        "schane": lambda: brute_scln(z, y2, variant),
        "ce_supcon": lambda: brute_supcon(z, y2),
        "ce_simclr": lambda: brute_nt_xent(z),
        "ce": lambda: None,
    }[objective]()
    expected = ce if con is None else (1 - LAM) * ce + LAM * con
    loss, logs = t.training_step(batch)
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert float(logs["ce"].detach()) == pytest.approx(ce, rel=1e-5)
    if con is not None:
        (term,) = set(logs) - {"ce"}
        assert float(logs[term].detach()) == pytest.approx(con, rel=1e-5)


def test_schane_terms_differ_from_supcon(trainable):
    """Hard-negative weights matter on this batch (the test above would not notice a swap)."""
    t = trainable
    (x1, x2), _, _ = two_view_batch(LABELS)
    with torch.no_grad():
        f = _np(t.model["backbone"](torch.cat([x1, x2])))
    z = f / np.linalg.norm(f, axis=1, keepdims=True)
    gap = abs(brute_scln(z, LABELS + LABELS, "paper") - brute_supcon(z, LABELS + LABELS))
    assert gap > 1e-3, gap  # far beyond the 1e-5 relative tolerance of the loss checks


def test_training_batches_have_two_different_autoaugment_views():
    t = make()
    (x1, x2), y, _ = next(iter(t.train_batches(0)))
    assert x1.shape == x2.shape and x1.shape[0] == len(y) == 16
    assert not torch.equal(x1, x2)


@pytest.mark.parametrize("objective", ["schane", "ce_simclr"])
def test_every_parameter_gets_a_gradient(objective, assert_grads):
    t = make(objective=objective)
    loss, _ = t.training_step(two_view_batch(LABELS))
    loss.backward()
    assert_grads(t.model)


def _features_of(t, dataset) -> np.ndarray:
    t.model.eval()
    with torch.no_grad():
        f = torch.stack([t.model["backbone"](dataset[i][0][None])[0] for i in range(len(dataset))])
    return (f / f.norm(dim=1, keepdim=True)).numpy()


def test_fewshot_and_isotropy_at_the_end():
    t = make(fewshot_ways=[5, 3], fewshot_shots=[1, 2], fewshot_episodes=4, fewshot_query=5)
    r1 = t.step()
    assert not any(k.startswith("fewshot/") for k in r1) and "test/isotropy" not in r1
    r2 = t.step()
    feats = _features_of(t, t.data.test)
    labels = np.array([t.data.test[i][1] for i in range(len(t.data.test))])
    for n in (5, 3):
        for k in (1, 2):
            mean, ci = fewshot_eval(feats, labels, n_way=n, k_shot=k, n_query=5, n_episodes=4, seed=0)
            assert r2[f"fewshot/{n}way{k}shot"] == pytest.approx(100 * mean, abs=1e-9)
            assert r2[f"fewshot/{n}way{k}shot_ci95"] == pytest.approx(100 * ci, abs=1e-9)
    assert r2["test/isotropy"] == pytest.approx(isotropy_score(feats), rel=1e-4)
    assert 0 < r2["test/isotropy"] <= 1


def test_no_fewshot_by_default():
    t = make(epochs=1, max_train_batches=1)
    r = t.step()
    assert not any(k.startswith("fewshot/") for k in r) and "test/isotropy" in r


def test_save_restore_continues_identically(tmp_path):
    cfg = methods()["schane"].smoke
    a = make(**cfg)
    a.step()
    a.save_checkpoint(str(tmp_path))
    ra = a.step()
    b = make(**cfg)
    b.load_checkpoint(str(tmp_path))
    rb = b.step()
    for key in ("train/loss", "train/ce", "train/scln", "val/acc", "best/epoch", "test/acc", "test/isotropy",
                "fewshot/5way1shot", "fewshot/5way1shot_ci95"):  # fmt: skip
        assert ra[key] == rb[key], key


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lambda_", -0.1),
        ("lambda_", 1.1),
        ("temperature", 0.0),
        ("temperature", -0.5),
        ("scln_variant", "focal"),
        ("objective", "simclr"),
        ("fewshot_ways", [1]),
        ("fewshot_query", 0),
        ("fewshot_episodes", 0),
    ],
)
def test_bad_config_raises_naming_the_field(field, value):
    extra = {"fewshot_shots": [1]} if field == "fewshot_ways" else {}
    with pytest.raises(ConfigError) as err:
        SchaneConfig.from_dict({field: value, **extra})
    assert err.value.field == field


def test_fewshot_ways_and_shots_come_together():
    with pytest.raises(ConfigError, match="fewshot_shots"):
        SchaneConfig.from_dict({"fewshot_ways": [5]})
    with pytest.raises(ConfigError, match="fewshot_ways"):
        SchaneConfig.from_dict({"fewshot_shots": [1]})
    with pytest.raises(ConfigError) as err:
        SchaneConfig.from_dict({"fewshot_ways": [5], "fewshot_shots": [0]})
    assert err.value.field == "fewshot_shots"


# --------------------------------------------------------------------------- App. A.2 regularisers


def test_paper_defaults_dropout_and_early_stopping():
    cfg = SchaneConfig()
    assert cfg.dropout == 0.1 and cfg.early_stop_patience == 10
    # App. A.2: Adam (AdamW) with weight decay 0.05, lr 1e-4, batch 1024, 100 few-shot epochs
    assert (cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.batch_size, cfg.epochs) == (
        "adamw",
        1e-4,
        0.05,
        1024,
        100,
    )


def test_dropout_on_encoder_output_only_in_train_mode():
    from torch import nn

    t = make(dropout=0.5)
    assert isinstance(t.model["dropout"], nn.Dropout) and t.model["dropout"].p == 0.5
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    t.model.eval()
    with torch.no_grad():
        f = t.model["backbone"](x)
        assert torch.equal(t.features(x), f), "eval mode: no dropout"
        t.model["dropout"].train()  # backbone stays in eval mode: same f
        out = t.features(x)
    dropped = out == 0
    assert 0 < dropped.float().mean() < 1
    assert torch.allclose(out[~dropped], f[~dropped] / 0.5, rtol=1e-6), "kept units scaled by 1/(1-p)"
    # the training loss sees the dropout: two draws differ in train mode, never in eval mode
    batch = two_view_batch(LABELS)
    with torch.no_grad():
        losses = [float(t.training_step(batch)[0]) for _ in range(2)]
        assert losses[0] != losses[1]
        t.model["dropout"].eval()
        assert float(t.training_step(batch)[0]) == float(t.training_step(batch)[0])


# --------------------------------------------------------------------------- novel-class episodes


NOVEL_CLASSES, NOVEL_PER_CLASS = 6, 4


@pytest.fixture
def tiny_fewshot_dataset(monkeypatch):
    """A registered dataset with 3 base classes and 6 novel classes whose images are distinct."""
    from ftsweep.data import DATASETS, DatasetInfo, LoadedDataset, TensorImageDataset, load_dataset_cached

    g = torch.Generator().manual_seed(0)

    def images(n: int) -> torch.Tensor:
        return torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)

    base_t = np.repeat(np.arange(3), 10)
    test_t = np.repeat(np.arange(3), 4)
    novel_t = np.repeat(np.arange(NOVEL_CLASSES), NOVEL_PER_CLASS)
    loaded = LoadedDataset(
        train=TensorImageDataset(images(len(base_t)), base_t),
        test=TensorImageDataset(images(len(test_t)), test_t),
        train_targets=base_t,
        test_targets=test_t,
        novel=TensorImageDataset(images(len(novel_t)), novel_t),
        novel_targets=novel_t,
    )
    info = DatasetInfo(
        name="tiny_fs", num_classes=3, load=lambda root, download: loaded, image_size=32,
        num_train=30, num_test=12, num_novel_classes=NOVEL_CLASSES, offline=True,
    )  # fmt: skip
    monkeypatch.setitem(DATASETS, "tiny_fs", info)
    load_dataset_cached.cache_clear()
    yield loaded
    load_dataset_cached.cache_clear()


def _spy_fewshot(monkeypatch) -> list[tuple[np.ndarray, np.ndarray]]:
    import ftsweep.methods.schane as schane_module

    calls = []

    def spy(features, labels, **kwargs):
        calls.append((np.asarray(features), np.asarray(labels)))
        return fewshot_eval(features, labels, **kwargs)

    monkeypatch.setattr(schane_module, "fewshot_eval", spy)
    return calls


def test_episodes_come_from_novel_classes_only(tiny_fewshot_dataset, monkeypatch):
    calls = _spy_fewshot(monkeypatch)
    cfg = {"dataset": "tiny_fs", "epochs": 1, "max_train_batches": 1, "val_fraction": 0.2}
    t = make(**cfg, fewshot_ways=[5], fewshot_shots=[1], fewshot_query=3, fewshot_episodes=4)
    assert t.data.novel is not None and len(t.data.novel) == NOVEL_CLASSES * NOVEL_PER_CLASS
    r = t.step()
    assert r["fewshot/on_novel"] == 1.0
    (feats, labels), = calls  # fmt: skip
    assert np.array_equal(labels, tiny_fewshot_dataset.novel_targets), "novel images, novel labels"
    assert np.allclose(feats, _features_of(t, t.data.novel), atol=1e-5)
    mean, ci = fewshot_eval(feats, labels, n_way=5, k_shot=1, n_query=3, n_episodes=4, seed=0)
    assert r["fewshot/5way1shot"] == pytest.approx(100 * mean) and r[
        "fewshot/5way1shot_ci95"
    ] == pytest.approx(100 * ci)
    # the isotropy score stays on the base classes' test part
    assert r["test/isotropy"] == pytest.approx(isotropy_score(_features_of(t, t.data.test)), rel=1e-4)

    calls.clear()
    t = make(
        **cfg, fewshot_split="test", fewshot_ways=[3], fewshot_shots=[1], fewshot_query=3, fewshot_episodes=2
    )
    r = t.step()
    assert r["fewshot/on_novel"] == 0.0
    assert np.array_equal(calls[0][1], tiny_fewshot_dataset.test_targets)


def test_fewshot_falls_back_to_test_without_novel_classes(monkeypatch):
    calls = _spy_fewshot(monkeypatch)
    t = make(
        epochs=1,
        max_train_batches=1,
        fewshot_ways=[3],
        fewshot_shots=[1],
        fewshot_query=2,
        fewshot_episodes=2,
    )
    r = t.step()
    assert r["fewshot/on_novel"] == 0.0 and len(calls[0][1]) == len(t.data.test)


def test_fewshot_split_config_errors(tiny_fewshot_dataset):
    with pytest.raises(ConfigError, match="has no novel classes") as err:
        SchaneConfig.from_dict({"fewshot_split": "novel", "fewshot_ways": [5], "fewshot_shots": [1]})
    assert err.value.field == "fewshot_split"
    with pytest.raises(ConfigError) as err:
        SchaneConfig.from_dict({"dataset": "tiny_fs", "fewshot_ways": [7], "fewshot_shots": [1]})
    assert err.value.field == "fewshot_ways" and "6" in str(err.value)
    for field, value in (
        ("dropout", 1.0),
        ("dropout", -0.1),
        ("fewshot_split", "val"),
        ("early_stop_patience", 0),
    ):
        with pytest.raises(ConfigError) as err:
            SchaneConfig.from_dict({field: value})
        assert err.value.field == field
