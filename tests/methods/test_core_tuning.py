"""Core-tuning Trainable: the step loss against a float64 brute-force recomputation, ablations,
gradients, degenerate batches, save/restore and config errors."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from ftsweep.config import ConfigError
from ftsweep.losses import manifold_mixup, mixup_hard_pairs
from ftsweep.methods.core_tuning import CoreTuningConfig, CoreTuningMethod

BASE = {"pretrained": "none", "device": "cpu", "batch_size": 16, "epochs": 3, "max_train_batches": 2}
SEED = 123


@pytest.fixture(scope="module")
def trainable():
    t = CoreTuningMethod({**BASE, "eta": 0.5, "mixup_alpha": 2.0, "lambda_p": 0.3, "lambda_n": 0.6})
    t.model.eval()  # deterministic backbone: the test recomputes z with a second forward
    yield t


def make_batch(labels: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(labels), 3, 32, 32, generator=g)
    return x, torch.tensor(labels), torch.arange(len(labels))


LABELS = [0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 4, 5]  # 4 and 5 have no positive


def with_cfg(t, **changes):
    t.cfg = dataclasses.replace(t.cfg, **changes)
    return t


# ---- independent float64 recomputation ---------------------------------------------------------
def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def brute_ce(z: np.ndarray, labels: list[int], W: np.ndarray, b: np.ndarray) -> float:
    total = 0.0
    for zi, yi in zip(z, labels, strict=True):
        logits = W @ zi + b
        total += -(logits[yi] - math.log(sum(math.exp(v) for v in logits)))
    return total / len(labels)


def brute_soft_ce(z: np.ndarray, q: np.ndarray, W: np.ndarray, b: np.ndarray) -> float:
    if len(z) == 0:
        return 0.0
    total = 0.0
    for zi, qi in zip(z, q, strict=True):
        logits = W @ zi + b
        lse = math.log(sum(math.exp(v) for v in logits))
        total += -sum(qc * (lc - lse) for qc, lc in zip(qi, logits, strict=True))
    return total / len(z)


def brute_project(projector: torch.nn.Sequential, z: np.ndarray) -> np.ndarray:
    h = z
    linears = [m for m in projector if isinstance(m, torch.nn.Linear)]
    for k, lin in enumerate(linears):
        h = h @ _np(lin.weight).T + _np(lin.bias)
        if k < len(linears) - 1:
            h = np.maximum(h, 0.0)
    return h / np.linalg.norm(h, axis=1, keepdims=True)


def brute_contrastive(v: np.ndarray, labels: list[int], tau: float, focal: bool, num_anchors: int) -> float:
    """Eq. 1 / §4.3 with P_i = {j != i: same label} over the whole set, anchors i = 1..n (the
    originals, the first ``num_anchors`` rows), mean over anchors with a positive."""
    n = len(labels)
    per_anchor = []
    for i in range(num_anchors):
        denom = sum(math.exp(float(v[i] @ v[k]) / tau) for k in range(n) if k != i)
        terms = []
        for j in range(n):
            if j != i and labels[j] == labels[i]:
                p = math.exp(float(v[i] @ v[j]) / tau) / denom
                terms.append(((1 - p) if focal else 1.0) * math.log(p))
        if terms:
            per_anchor.append(-sum(terms) / len(terms))
    return sum(per_anchor) / len(per_anchor) if per_anchor else 0.0


def expected_loss(t, batch, gen_seed: int) -> tuple[float, int]:
    """CE^m + eta * L_con(^f) recomputed from the config; returns (loss, generated count)."""
    cfg = t.cfg
    x, y, _ = batch
    labels = y.tolist()
    C = t.data.num_classes
    with torch.no_grad():
        z_t = t.model["backbone"](x)
    z = _np(z_t)
    W, b = _np(t.model["classifier"].weight), _np(t.model["classifier"].bias)
    eye = np.eye(C)
    set_z, set_lab = list(z), list(labels)
    mixed_z, mixed_q = np.zeros((0, z.shape[1])), np.zeros((0, C))
    g = torch.Generator().manual_seed(gen_seed)
    if cfg.mixup == "hard":
        # which pairs are mixed (hardest indices, partners, clipped lambdas) comes from the
        # library; the features, labels, set and losses are recomputed here
        pairs = mixup_hard_pairs(
            z_t, y, C, cfg.mixup_alpha, cfg.lambda_p, cfg.lambda_n, generator=g, variant="paper"
        )
        for a, hp, hn, lam in zip(
            pairs.pos_anchor_index.tolist(),
            pairs.pos_positive_index.tolist(),
            pairs.pos_negative_index.tolist(),
            pairs.pos_lambda.tolist(),
            strict=True,
        ):
            assert lam >= cfg.lambda_p and labels[hp] == labels[a] and hp != a and labels[hn] != labels[a]
            set_z.append(lam * z[hp] + (1 - lam) * z[hn])
            set_lab.append(labels[a])
        neg_z, neg_q = [], []
        for a, p, lam in zip(
            pairs.neg_anchor_index.tolist(),
            pairs.neg_partner_index.tolist(),
            pairs.neg_lambda.tolist(),
            strict=True,
        ):
            assert lam >= cfg.lambda_n and labels[p] != labels[a]
            neg_z.append((1 - lam) * z[a] + lam * z[p])
            neg_q.append((1 - lam) * eye[labels[a]] + lam * eye[labels[p]])
            set_z.append(neg_z[-1])
            set_lab.append(labels[p] if lam > 0.5 else labels[a])  # dominant label
        mixed_z, mixed_q = np.array(neg_z).reshape(-1, z.shape[1]), np.array(neg_q).reshape(-1, C)
    elif cfg.mixup == "manifold":
        mixed = manifold_mixup(z_t, torch.eye(C)[y], cfg.mixup_alpha, generator=g)
        lam, index = float(mixed.lam), mixed.index.tolist()
        mixed_z = np.array([lam * z[i] + (1 - lam) * z[index[i]] for i in range(len(labels))])
        mixed_q = np.array(
            [lam * eye[labels[i]] + (1 - lam) * eye[labels[index[i]]] for i in range(len(labels))]
        )
        set_z += list(mixed_z)
        set_lab += [int(np.argmax(q)) for q in mixed_q]
    loss = brute_ce(z, labels, W, b) + brute_soft_ce(mixed_z, mixed_q, W, b)
    if cfg.eta > 0:
        v = brute_project(t.model["projector"], np.array(set_z))
        loss += cfg.eta * brute_contrastive(
            v, set_lab, cfg.temperature, focal=cfg.contrastive == "focal", num_anchors=len(labels)
        )
    return loss, len(set_z) - len(labels)


def step(t, batch, gen_seed: int):
    t.generator = torch.Generator().manual_seed(gen_seed)
    return t.training_step(batch)


@pytest.mark.parametrize(
    ("contrastive", "mixup", "eta"),
    [
        ("focal", "hard", 0.5),  # Core-tuning (Table 2 row 5)
        ("plain", "hard", 0.5),  # row 4
        ("plain", "none", 0.5),  # row 2
        ("focal", "manifold", 0.0),  # row 3
        ("focal", "none", 0.0),  # row 1 (CE)
        ("focal", "manifold", 2.0),  # manifold mixup with the contrastive term
    ],
)
def test_step_loss_matches_bruteforce(trainable, contrastive, mixup, eta):
    t = with_cfg(trainable, contrastive=contrastive, mixup=mixup, eta=eta)
    batch = make_batch(LABELS)
    loss, logs = step(t, batch, SEED)
    expected, generated = expected_loss(t, batch, SEED)
    assert float(logs["generated"]) == generated
    assert float(loss.detach()) == pytest.approx(expected, rel=2e-5, abs=1e-5)


@torch.no_grad()  # values only: no graph behind the floats compared
def test_ablation_rows_change_what_they_should(trainable):
    batch = make_batch(LABELS)
    t = with_cfg(trainable, contrastive="focal", mixup="hard", eta=0.5)
    focal_hard, logs_hard = step(t, batch, SEED)
    # hard: one B+ per anchor with a positive and a negative (10), one B- per anchor (12)
    assert float(logs_hard["generated"]) == 10 + 12
    assert float(logs_hard["ce_mixed"]) > 0
    plain_hard, _ = step(with_cfg(t, contrastive="plain"), batch, SEED)
    # same pairs, same CE^m, different contrastive term
    assert float(plain_hard) != pytest.approx(float(focal_hard), rel=1e-4)
    focal_none, logs_none = step(with_cfg(t, contrastive="focal", mixup="none"), batch, SEED)
    assert float(logs_none["generated"]) == 0 and float(logs_none["ce_mixed"]) == 0
    assert float(focal_none) == pytest.approx(float(logs_none["ce"] + 0.5 * logs_none["con"]), rel=1e-6)
    _, logs_manifold = step(with_cfg(t, mixup="manifold"), batch, SEED)
    assert float(logs_manifold["generated"]) == len(LABELS)
    ce_only, logs_ce = step(with_cfg(t, mixup="none", eta=0.0), batch, SEED)
    assert float(ce_only) == pytest.approx(float(logs_ce["ce"]), rel=1e-7) and float(logs_ce["con"]) == 0
    with_cfg(t, contrastive="focal", mixup="hard", eta=0.5)


@torch.no_grad()
def test_generator_drives_the_pairs(trainable):
    t = with_cfg(trainable, contrastive="focal", mixup="hard", eta=0.5)
    batch = make_batch(LABELS)
    a, _ = step(t, batch, SEED)
    b, _ = step(t, batch, SEED)
    c, _ = step(t, batch, SEED + 1)
    assert float(a) == float(b)
    assert float(a) != float(c)


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_every_parameter_gets_a_finite_gradient(trainable, variant):
    t = with_cfg(trainable, contrastive="focal", mixup="hard", eta=0.5, variant=variant)
    t.model.zero_grad(set_to_none=True)
    loss, _ = step(t, make_batch(LABELS), SEED)
    loss.backward()
    params = [(n, p) for n, p in t.model.named_parameters() if p.requires_grad]
    assert all(p.grad is not None for _, p in params), [n for n, p in params if p.grad is None]
    assert all(bool(torch.isfinite(p.grad).all()) for _, p in params)
    assert all(float(p.grad.abs().sum()) > 0 for n, p in params if n.startswith(("projector", "classifier")))
    t.model.zero_grad(set_to_none=True)
    with_cfg(t, variant="paper")


@pytest.mark.parametrize("labels", [list(range(10)), [3] * 8], ids=["no_positive", "no_negative"])
@pytest.mark.parametrize(
    ("variant", "contrastive", "mixup"),
    [
        ("paper", "focal", "hard"),
        ("paper", "plain", "hard"),
        ("paper", "focal", "none"),
        ("official", "focal", "hard"),
    ],
)
def test_degenerate_batches_are_finite(trainable, labels, variant, contrastive, mixup):
    t = with_cfg(trainable, variant=variant, contrastive=contrastive, mixup=mixup, eta=0.5)
    t.model.zero_grad(set_to_none=True)
    batch = make_batch(labels)
    loss, logs = step(t, batch, SEED)
    assert all(math.isfinite(float(torch.as_tensor(v).detach())) for v in logs.values())
    loss.backward()
    assert math.isfinite(float(loss.detach()))
    assert all(bool(torch.isfinite(p.grad).all()) for p in t.model.parameters() if p.grad is not None)
    if variant == "paper":
        expected, _ = expected_loss(t, batch, SEED)
        assert float(loss.detach()) == pytest.approx(expected, rel=2e-5, abs=1e-5)
    t.model.zero_grad(set_to_none=True)
    with_cfg(t, variant="paper", contrastive="focal", mixup="hard")


def test_eta_zero_builds_no_projector():
    t = CoreTuningMethod({**BASE, "eta": 0.0})
    assert "projector" not in t.model


def test_projection_depth_and_dim():
    t = CoreTuningMethod({**BASE, "proj_dim": 32, "proj_layers": 3})
    linears = [m for m in t.model["projector"] if isinstance(m, torch.nn.Linear)]
    width = t.model["backbone"].num_features
    assert [(m.in_features, m.out_features) for m in linears] == [(width, width), (width, width), (width, 32)]


def test_save_restore_continues_identically(tmp_path):
    cfg = {**BASE, "seed": 3}
    a = CoreTuningMethod(cfg)
    a.step()
    a.save_checkpoint(str(tmp_path))
    ra = a.step()
    b = CoreTuningMethod(cfg)
    b.load_checkpoint(str(tmp_path))
    rb = b.step()
    for key in ("train/loss", "train/ce", "train/ce_mixed", "train/con", "val/acc", "val/loss"):
        assert ra[key] == rb[key], key
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lambda_p", 1.2),
        ("lambda_p", -0.1),
        ("lambda_n", 1.01),
        ("lambda_n", -1.0),
        ("temperature", 0.0),
        ("temperature", -0.07),
        ("mixup_alpha", 0.0),
        ("mixup_alpha", -1.0),
        ("eta", -0.1),
        ("proj_dim", 0),
        ("proj_layers", 0),
        ("variant", "code"),
        ("contrastive", "triplet"),
        ("mixup", "cutmix"),
    ],
)
def test_bad_config_raises(field, value):
    with pytest.raises(ConfigError) as err:
        CoreTuningConfig.from_dict({field: value})
    assert field in str(err.value) and str(value) in str(err.value)


@pytest.mark.parametrize(
    ("field", "value"), [("contrastive", "plain"), ("mixup", "none"), ("mixup", "manifold")]
)
def test_official_variant_only_has_the_public_code_path(field, value):
    with pytest.raises(ConfigError, match=field):
        CoreTuningConfig.from_dict({"variant": "official", field: value})


def test_official_variant_keeps_the_public_code_s_temperature():
    # focal_SupConLoss: temperature = base_temperature = 0.07 whatever is configured
    with pytest.raises(ConfigError) as err:
        CoreTuningConfig.from_dict({"variant": "official", "temperature": 0.1})
    assert (err.value.field, err.value.value) == ("temperature", 0.1)
    assert "must be 0.07 with variant=official" in str(err.value)
    assert CoreTuningConfig.from_dict({"variant": "official"}).temperature == 0.07
    assert CoreTuningConfig.from_dict({"variant": "paper", "temperature": 0.1}).temperature == 0.1


def test_defaults_are_the_papers():
    cfg = CoreTuningConfig()
    assert (cfg.lambda_p, cfg.lambda_n, cfg.temperature, cfg.proj_dim, cfg.proj_layers) == (
        0.8,
        0.8,
        0.07,
        256,
        2,
    )
    assert (cfg.variant, cfg.contrastive, cfg.mixup) == ("paper", "focal", "hard")
    # App. C.2: 100 epochs, batch 256, SGD + Nesterov 0.9, lr 0.1 cosine, weight decay 1e-4
    assert (cfg.epochs, cfg.batch_size, cfg.optimizer, cfg.lr, cfg.weight_decay) == (
        100,
        256,
        "sgd",
        0.1,
        1e-4,
    )
    assert (cfg.momentum, cfg.nesterov, cfg.schedule) == (0.9, True, "cosine")
