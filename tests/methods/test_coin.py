"""COIN (ftsweep.methods.coin): the ⌊αN⌋ stage switch, a frozen classifier in stage 1, both stage
losses against a float64 brute-force recomputation, S_Dbw against independently extracted
features, stage-2-only model selection, save/restore across the stage boundary and config errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ftsweep.config import ConfigError
from ftsweep.methods.coin import CoinConfig, CoinMethod, stage1_epochs
from ftsweep.metrics import s_dbw
from ftsweep.registry import methods

BASE = {"pretrained": "none", "device": "cpu", "batch_size": 16, "max_train_batches": 2, "lr": 0.05}
LABELS = [0, 0, 0, 1, 1, 2, 2, 2, 3, 4]  # 3 and 4 have no positive


def make(**cfg):
    return CoinMethod({**BASE, **cfg})


def make_batch(labels: list[int], seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(len(labels), 3, 32, 32, generator=g), torch.tensor(labels), torch.arange(len(labels))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def brute_supcon(v: np.ndarray, labels: list[int], tau: float, variant: str) -> float:
    """COIN Eq. 1 (paper) / the public code's form (official), written as loops."""
    n = len(labels)
    per_anchor = []
    for i in range(n):
        denom = sum(math.exp(float(v[i] @ v[k]) / tau) for k in range(n) if k != i)
        if variant == "paper":
            pos = [j for j in range(n) if j != i and labels[j] == labels[i]]
            if pos:
                per_anchor.append(
                    -sum(math.log(math.exp(float(v[i] @ v[j]) / tau) / denom) for j in pos) / len(pos)
                )
        else:
            pos = [j for j in range(n) if labels[j] == labels[i]]  # the anchor itself included
            per_anchor.append(-sum(math.log(math.exp(float(v[i] @ v[j]) / tau) / denom) for j in pos) / n)
    return sum(per_anchor) / len(per_anchor)


def brute_projector(seq: torch.nn.Sequential, f: np.ndarray) -> np.ndarray:
    linears = [m for m in seq if isinstance(m, torch.nn.Linear)]
    h = f
    for k, lin in enumerate(linears):
        h = h @ _np(lin.weight).T + _np(lin.bias)
        if k < len(linears) - 1:
            h = np.maximum(h, 0.0)
    return h / np.linalg.norm(h, axis=1, keepdims=True)


def brute_ce(f: np.ndarray, labels: list[int], w: np.ndarray, b: np.ndarray) -> float:
    total = 0.0
    for fi, yi in zip(f, labels, strict=True):
        logits = w @ fi + b
        total += math.log(sum(math.exp(z) for z in logits)) - logits[yi]
    return total / len(labels)


@pytest.mark.parametrize(
    ("alpha", "epochs", "expected"),
    [(0.5, 5, 2), (0.59, 5, 2), (0.6, 5, 3), (0.7, 10, 7), (0.29, 100, 29), (0.3, 10, 3), (0.1, 5, 0)],
)
def test_stage1_epochs_is_floor_alpha_n(alpha, epochs, expected):
    assert stage1_epochs(alpha, epochs) == expected


def test_stage_switch_at_floor_alpha_n_and_classifier_frozen_before():
    t = make(epochs=5, alpha=0.5)  # ⌊2.5⌋ = 2 stage-1 epochs
    clf0 = {k: v.clone() for k, v in t.model["classifier"].state_dict().items()}
    bb0 = [p.detach().clone() for p in t.model["backbone"].parameters()]
    pj0 = [p.detach().clone() for p in t.model["projector"].parameters()]
    stages, results = [], []
    for epoch in range(5):
        r = t.step()
        stages.append(r["stage"])
        results.append(r)
        if epoch == 1:  # end of stage 1: classifier untouched (no grad, no weight decay/momentum)
            for k, v in t.model["classifier"].state_dict().items():
                assert torch.equal(v, clf0[k]), k
            assert all(
                not torch.equal(p, q) for p, q in zip(t.model["projector"].parameters(), pj0, strict=True)
            )
            assert any(
                not torch.equal(p, q) for p, q in zip(t.model["backbone"].parameters(), bb0, strict=True)
            )
            assert all(t.optimizer.state.get(p) in (None, {}) for p in t.model["classifier"].parameters())
    assert stages == [1, 1, 2, 2, 2]
    assert any(not torch.equal(v, clf0[k]) for k, v in t.model["classifier"].state_dict().items())
    # stage 1 logs SupCon only, stage 2 CE and SupCon; test images are not looked at in stage 1
    assert "train/ce" not in results[0] and "train/supcon" in results[0]
    assert "train/ce" in results[2] and "test/acc" not in results[0] and "test/acc" not in results[1]
    # selection only among stage-2 epochs
    assert all(r["best/epoch"] >= 3 for r in results[2:])
    best = max(range(2, 5), key=lambda e: (results[e]["val/acc"], -e))
    assert results[-1]["best/epoch"] == best + 1
    assert results[-1]["best/val/acc"] == results[best]["val/acc"]
    assert (
        "stage1/val/s_dbw" not in results[0]
        and results[1]["stage1/val/s_dbw"] == results[-1]["stage1/val/s_dbw"]
    )
    assert "val/s_dbw" in results[-1] and "val/s_dbw" not in results[-2]


def _val_features(t) -> tuple[np.ndarray, np.ndarray]:
    t.model.eval()
    feats, labels = [], []
    with torch.no_grad():
        for i in range(len(t.data.val)):
            x, y, _ = t.data.val[i]
            feats.append(t.model["backbone"](x[None]).numpy()[0])
            labels.append(y)
    return np.stack(feats), np.array(labels)


@pytest.mark.parametrize("variant", ["official", "paper"])
def test_s_dbw_of_validation_backbone_features(variant):
    t = make(epochs=2, alpha=0.5, s_dbw_variant=variant)
    r1 = t.step()
    f, y = _val_features(t)
    assert r1["stage1/val/s_dbw"] == pytest.approx(s_dbw(f, y, variant=variant), rel=1e-5)
    r2 = t.step()
    f, y = _val_features(t)
    assert r2["val/s_dbw"] == pytest.approx(s_dbw(f, y, variant=variant), rel=1e-5)


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_stage_losses_match_brute_force(variant):
    t = make(epochs=4, alpha=0.5, lambda_=0.3, temperature=0.2, supcon_variant=variant)
    t.model.eval()  # deterministic BatchNorm: the recomputation does its own forward
    batch = make_batch(LABELS)
    with torch.no_grad():
        f = _np(t.model["backbone"](batch[0]))
    v = brute_projector(t.model["projector"], f)
    con = brute_supcon(v, LABELS, 0.2, variant)
    ce = brute_ce(f, LABELS, _np(t.model["classifier"].weight), _np(t.model["classifier"].bias))

    t.epoch = 1  # still stage 1 (⌊0.5·4⌋ = 2)
    loss, logs = t.training_step(batch)
    assert float(loss.detach()) == pytest.approx(con, rel=1e-5, abs=1e-6)
    assert set(logs) == {"supcon"}

    t.epoch = 2  # first stage-2 epoch
    loss, logs = t.training_step(batch)
    assert float(loss.detach()) == pytest.approx(ce + 0.3 * con, rel=1e-5, abs=1e-6)
    assert float(logs["ce"].detach()) == pytest.approx(ce, rel=1e-5)
    assert float(logs["supcon"].detach()) == pytest.approx(con, rel=1e-5)


def test_gradients_per_stage(assert_grads):
    t = make(epochs=2, alpha=0.5)
    batch = make_batch(LABELS)
    t.epoch = 0
    loss, _ = t.training_step(batch)
    loss.backward()
    assert_grads(t.model, without=lambda name: name.startswith("classifier"))
    t.model.zero_grad(set_to_none=True)
    t.epoch = 1
    loss, _ = t.training_step(batch)
    loss.backward()
    assert_grads(t.model)


def test_save_restore_across_the_stage_boundary(tmp_path):
    cfg = {"epochs": 3, "alpha": 0.5, **methods()["coin"].smoke}  # stage 1 = epoch 1
    a = make(**cfg)
    a.step()
    a.save_checkpoint(str(tmp_path))
    ra = a.step()
    b = make(**cfg)
    b.load_checkpoint(str(tmp_path))
    rb = b.step()
    for key in ("train/loss", "train/ce", "train/supcon", "val/acc", "val/loss", "stage", "best/epoch",
                "best/val/acc", "test/acc", "stage1/val/s_dbw"):  # fmt: skip
        assert ra[key] == rb[key], key
    for (k, p), q in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.equal(p, q), k


def test_alpha_zero_is_scl_star_ce_plus_lambda_supcon_from_the_first_epoch():
    """COIN's SCL* row: no initialization stage, CE + λ·SupCon on COIN's projector throughout."""
    t = make(epochs=2, alpha=0.0, lambda_=0.3)
    assert t.stage1_epochs == 0 and t.stage(0) == 2
    batch = make_batch([0, 0, 1, 1, 2, 2])
    loss, logs = t.training_step(batch)
    assert set(logs) == {"ce", "supcon"}
    assert float(loss) == pytest.approx(float(logs["ce"] + 0.3 * logs["supcon"]), rel=1e-6)
    r = t.step()
    assert r["best/epoch"] == 1 and "test/acc" in r and "stage1/val/s_dbw" not in r


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("alpha", 1.0),
        ("alpha", -0.2),
        ("alpha", 1.5),
        ("temperature", 0.0),
        ("temperature", -0.1),
        ("lambda_", -0.1),
        ("proj_dim", 0),
        ("proj_layers", 0),
        ("proj_hidden", 0),
        ("supcon_variant", "focal"),
        ("s_dbw_variant", "tong"),
    ],
)
def test_bad_config_raises_naming_the_field(field, value):
    with pytest.raises(ConfigError) as err:
        CoinConfig.from_dict({field: value})
    assert err.value.field == field
    assert repr(value) in str(err.value)


def test_defaults_are_the_papers():
    # §4.2: N = 100, τ = 0.3, λ = 0.1, α = 0.7, "nearly the same" settings as Core-tuning's App. C.2

    cfg = CoinConfig()
    assert (cfg.epochs, cfg.alpha, cfg.temperature, cfg.lambda_) == (100, 0.7, 0.3, 0.1)
    assert (cfg.batch_size, cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.nesterov) == (
        256,
        "sgd",
        0.1,
        1e-4,
        True,
    )
