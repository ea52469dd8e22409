"""The uot_selection method (ftsweep.methods.uot_selection): Eq. 6 / Eq. 7 steps, config errors, save/restore, feature cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import ftsweep.selection.pipeline as dr
from ftsweep.config import ConfigError
from ftsweep.data import get_dataset_info
from ftsweep.methods.uot_selection import UotSelectionConfig, UotSelectionMethod
from ftsweep.registry import methods

SMOKE = methods()["uot_selection"].smoke


def make(config: dict) -> UotSelectionMethod:
    """The method with a trial directory beside the config's cache (for ``selection.json``)."""
    return UotSelectionMethod(config, logdir=str(Path(config["cache_dir"]).parent / "trial"))


def _config(tmp_path: Path, **extra: object) -> dict:
    return {
        **SMOKE,
        "pretrained": "none",
        "device": "cpu",
        "epochs": 3,
        "batch_size": 16,
        "max_train_batches": 2,
        "max_eval_batches": 1,
        "cache_dir": str(tmp_path / "cache"),
        **extra,
    }


def _ce64(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Mean of -log softmax(logits)[y], by an explicit loop in float64."""
    z = logits.detach().double()
    total = 0.0
    for row, label in zip(z, y.tolist(), strict=True):
        m = float(row.max())
        total += -(float(row[label]) - m - float(torch.log(torch.exp(row - m).sum())))
    return total / len(y)


def _soft_ce64(logits: torch.Tensor, q: torch.Tensor) -> float:
    z, q = logits.detach().double(), q.detach().double()
    total = 0.0
    for row, target in zip(z, q, strict=True):
        log_p = row - row.max() - torch.log(torch.exp(row - row.max()).sum())
        total += -float((target * log_p).sum())
    return total / len(z)


def test_labeled_step_is_ce_target_plus_lambda_ce_source(tmp_path: Path, assert_grads) -> None:
    t = make(_config(tmp_path, lambda_=0.3, joint_forward=False))  # a pass per batch
    g = torch.Generator().manual_seed(0)
    xt, yt = torch.randn(6, 3, 32, 32, generator=g), torch.tensor([0, 1, 2, 3, 4, 0])
    xs, ys = torch.randn(6, 3, 32, 32, generator=g), torch.tensor([0, 11, 29, 3, 3, 20])
    t.model.train()
    loss, logs = t.training_step(((xt, yt, torch.arange(6)), (xs, ys, torch.arange(6))))
    with torch.no_grad():
        feats_t, feats_s = t.model["backbone"](xt), t.model["backbone"](xs)
        ce_t = _ce64(t.model["classifier"](feats_t), yt)
        ce_s = _ce64(t.model["source_classifier"](feats_s), ys)
    assert t.model["source_classifier"].out_features == 30  # all source classes (K_g-dim head)
    assert float(logs["ce_target"].detach()) == pytest.approx(ce_t, rel=1e-5)
    assert float(logs["ce_source"].detach()) == pytest.approx(ce_s, rel=1e-5)
    assert float(loss.detach()) == pytest.approx(ce_t + 0.3 * ce_s, rel=1e-5)
    loss.backward()
    assert_grads(t.model)


def test_unlabeled_step_uses_weak_softmax_as_soft_label(tmp_path: Path) -> None:
    t = make(_config(tmp_path, source_labels=False, lambda_=0.7, joint_forward=False))
    assert "source_classifier" not in t.model  # one head in Eq. 7
    g = torch.Generator().manual_seed(1)
    xt, yt = torch.randn(5, 3, 32, 32, generator=g), torch.tensor([4, 3, 2, 1, 0])
    xw, xs = torch.randn(5, 3, 32, 32, generator=g), torch.randn(5, 3, 32, 32, generator=g)
    t.model.train()
    loss, logs = t.training_step(((xt, yt, torch.arange(5)), ((xw, xs), -torch.ones(5), torch.arange(5))))
    with torch.no_grad():
        ce_t = _ce64(t.predict(xt), yt)
        q = torch.softmax(t.predict(xw).double(), dim=1)
        sce = _soft_ce64(t.predict(xs), q)
    assert float(logs["soft_ce_source"].detach()) == pytest.approx(sce, rel=1e-5)
    assert float(loss.detach()) == pytest.approx(ce_t + 0.7 * sce, rel=1e-5)
    # the soft label carries no gradient: with the target term removed, d loss / d weak = 0
    xw_req = xw.clone().requires_grad_(True)
    loss2, _ = t.training_step(((xt, yt, torch.arange(5)), ((xw_req, xs), -torch.ones(5), torch.arange(5))))
    loss2.backward()
    assert xw_req.grad is None


@pytest.mark.parametrize("labels", [True, False])
def test_joint_forward_normalises_the_step_s_images_together(tmp_path: Path, labels: bool) -> None:
    # the public code's one pass (interleave(cat(...))): BatchNorm sees target and reused images
    # as one batch, so the losses are those of one backbone call, not of one call per batch
    t = make(_config(tmp_path, lambda_=0.4, source_labels=labels))
    assert t.cfg.joint_forward
    g = torch.Generator().manual_seed(2)
    xt, yt = torch.randn(4, 3, 32, 32, generator=g), torch.tensor([0, 1, 2, 3])
    xa, xb = torch.randn(4, 3, 32, 32, generator=g) + 2.0, torch.randn(4, 3, 32, 32, generator=g) - 1.0
    ys = torch.tensor([0, 11, 29, 3])
    source = (xa, ys, torch.arange(4)) if labels else ((xa, xb), -torch.ones(4), torch.arange(4))
    t.model.train()
    state = {k: v.clone() for k, v in t.model.state_dict().items()}
    loss, logs = t.training_step(((xt, yt, torch.arange(4)), source))
    loss.backward()
    assert all(p.grad is not None for p in t.model["backbone"].parameters())
    t.model.load_state_dict(state)  # the running statistics as before the step
    with torch.no_grad():
        parts = [xt, xa] if labels else [xt, xa, xb]
        feats = t.model["backbone"](torch.cat(parts)).split([4] * len(parts))
        ce_t = _ce64(t.model["classifier"](feats[0]), yt)
        if labels:
            other = _ce64(t.model["source_classifier"](feats[1]), ys)
        else:
            q = torch.softmax(t.model["classifier"](feats[1]).double(), dim=1)
            other = _soft_ce64(t.model["classifier"](feats[2]), q)
        separate = _ce64(t.model["classifier"](t.model["backbone"](xt)), yt)
    key = "ce_source" if labels else "soft_ce_source"
    assert float(logs["ce_target"].detach()) == pytest.approx(ce_t, rel=1e-5)
    assert float(logs[key].detach()) == pytest.approx(other, rel=1e-5)
    assert float(loss.detach()) == pytest.approx(ce_t + 0.4 * other, rel=1e-5)
    assert abs(separate - ce_t) > 1e-3  # a pass of the target alone gives another loss


def test_heads_start_as_the_public_code_s(tmp_path: Path) -> None:
    # fine_tune_top1.py: fc.weight ~ N(0, sqrt(2 / 2048)), fc.bias = 0, for both heads
    t = make(_config(tmp_path))
    for name in ("classifier", "source_classifier"):
        w, b = t.model[name].weight.detach(), t.model[name].bias.detach()
        assert torch.count_nonzero(b) == 0
        assert float(w.std()) == pytest.approx((2 / 2048) ** 0.5, rel=0.1)  # 128 × 30 draws
        assert abs(float(w.mean())) < 0.004
    d = make(_config(tmp_path, head_init="default"))  # nn.Linear: U(±1/sqrt(fan_in)), bias too
    bound = 1 / d.model["classifier"].in_features ** 0.5
    assert torch.count_nonzero(d.model["classifier"].bias) > 0
    assert float(d.model["source_classifier"].weight.abs().max()) <= bound
    assert float(d.model["source_classifier"].weight.std()) == pytest.approx(bound / 3**0.5, rel=0.1)


def test_selection_none_is_plain_fine_tuning(tmp_path: Path) -> None:
    t = make(_config(tmp_path, selection="none"))
    assert t.source_stream is None and "source_classifier" not in t.model
    xt, yt = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    t.model.train()
    loss, _ = t.training_step(((xt, yt, torch.arange(4)), None))
    with torch.no_grad():
        assert float(loss.detach()) == pytest.approx(_ce64(t.predict(xt), yt), rel=1e-5)
    result = t.step()
    assert not any(k.startswith("selection/") for k in result)


def test_reused_actor_for_plain_fine_tuning_reports_no_selection(tmp_path: Path) -> None:
    """reset_config (Tune actor reuse) from a UOT trial to selection none drops its selection/*."""
    t = make(_config(tmp_path, selection="uot", epochs=1))
    assert "selection/recall" in t.step()
    assert t.reset_config(_config(tmp_path, selection="none", epochs=1))
    assert t.source_stream is None
    assert not any(k.startswith("selection/") for k in t.step())


@pytest.mark.parametrize(
    ("field", "value"),
    [("eps", 0.0), ("tau1", -1.0), ("tau2", 0.0), ("eps_c", 0.0), ("k", 0), ("lambda_", -0.1)],
)
def test_bad_values_raise_at_construction(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        UotSelectionConfig.from_dict({field: value, "milestones": []})


def test_config_choice_errors() -> None:
    with pytest.raises(ConfigError, match="selection"):
        UotSelectionConfig.from_dict({"selection": "greedy"})
    with pytest.raises(ConfigError, match="metric"):
        UotSelectionConfig.from_dict({"selection": "uot", "metric": "manhattan", "k": 5})
    assert UotSelectionConfig.from_dict({"selection": "uot", "metric": "l2", "k": 5}).cost_metric == "l2"
    with pytest.raises(ConfigError, match="k: 31 .*30 classes of digits_source"):
        UotSelectionConfig.from_dict({"k": 31})
    with pytest.raises(ConfigError, match="true_units"):
        UotSelectionConfig.from_dict({"selection": "label", "dataset": "digits", "k": 5})
    UotSelectionConfig.from_dict({"selection": "greedy_ot", "metric": "cosine", "k": 5})  # valid


def test_k_larger_than_the_clusters_found_raises_at_setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """k ≤ num_clusters passes construction; k-means leaving fewer non-empty clusters fails setup."""

    def three_clusters(
        features: np.ndarray, num_clusters: int, *, seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        assign = np.arange(len(features)) % 3
        return np.zeros((num_clusters, features.shape[1]), np.float32), assign

    monkeypatch.setattr(dr, "cluster_units", three_clusters)
    with pytest.raises(ConfigError, match=r"k: 5 .*3 non-empty k-means clusters of digits_source"):
        make(_config(tmp_path, source_labels=False, num_clusters=20, k=5))
    with pytest.raises(ConfigError, match="num_clusters: 5000 .*1020 train images of digits_source"):
        make(_config(tmp_path, source_labels=False, num_clusters=5000, k=5))


def test_the_defaults_are_a_valid_config() -> None:
    """Every default has one home: the defaults alone (digits pair, class units) validate, and
    k-means units need a num_clusters within the source's images (the paper's 2000 is not)."""
    UotSelectionConfig().validate()
    assert UotSelectionConfig().k <= get_dataset_info(UotSelectionConfig().source_dataset).num_classes
    UotSelectionConfig(source_labels=False, num_clusters=1020).validate()
    with pytest.raises(ConfigError, match="num_clusters: 1021 .*1020 train images"):
        UotSelectionConfig(source_labels=False, num_clusters=1021).validate()


def test_label_selection_on_the_digits_pair_and_selection_file(tmp_path: Path) -> None:
    t = make(_config(tmp_path, selection="label"))
    result = t.step()
    assert result["selection/recall"] == 1.0 and result["selection/precision"] == 1.0
    assert result["selection/num_images"] == 5 * 34
    saved = json.loads((Path(t.logdir) / "selection.json").read_text())
    assert saved["selected_units"] == [0, 1, 2, 3, 4]
    # the stream holds exactly the upright 0–4 source images, with their source labels
    labels = t.source_stream.base.targets[t.source_stream.indices]
    assert set(labels.tolist()) == {0, 1, 2, 3, 4}


def test_save_restore_continues_identically(tmp_path: Path) -> None:
    cfg = _config(tmp_path, selection="uot")
    a = make(cfg)
    b = make(cfg)
    a.step()
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    a.save_checkpoint(str(ckpt))
    after_a = a.step()
    b.load_checkpoint(str(ckpt))
    after_b = b.step()
    for key in ("train/loss", "train/ce_source", "val/acc", "val/loss", "selection/recall"):
        assert after_a[key] == after_b[key], key
    assert after_a["epoch"] == after_b["epoch"] == 2
    for (n, pa), pb in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), n


def test_feature_cache_is_reused_across_trials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = dr.extract_features

    def counting(model, dataset, **kwargs):  # noqa: ANN001, ANN202
        calls.append(len(dataset))
        return real(model, dataset, **kwargs)

    monkeypatch.setattr(dr, "extract_features", counting)
    make(_config(tmp_path, selection="greedy_ot", epochs=1))
    assert sorted(calls) == [200, 1020]  # target and source train parts, once each
    files = sorted((tmp_path / "cache").glob("features-*.parquet"))
    assert len(files) == 2
    make(_config(tmp_path, selection="uot", lambda_=0.1, epochs=1))
    assert sorted(calls) == [200, 1020]  # nothing recomputed
    assert sorted((tmp_path / "cache").glob("features-*.parquet")) == files
    make(_config(tmp_path, selection="uot", seed=1, epochs=1))  # other init → new key
    assert len(calls) == 4


def test_image_size_applies_to_the_source_stream_and_the_features(tmp_path: Path) -> None:
    t = make(_config(tmp_path, selection="uot", image_size=40, epochs=1))
    assert t.source_stream[0][0].shape == (3, 40, 40)
    assert t.data.labeled[0][0].shape == (3, 40, 40)
    assert t._feature_key("digits_source")["image_size"] == 40
    assert t.step()["selection/num_images"] == 170
    assert len(list((tmp_path / "cache").glob("features-*.parquet"))) == 2
    d = make(_config(tmp_path, selection="uot", epochs=1))
    assert d.source_stream[0][0].shape == (3, 32, 32)  # the digits' own size
    assert d._feature_key("digits_source")["image_size"] == 32
    assert len(list((tmp_path / "cache").glob("features-*.parquet"))) == 4  # other crop → new entries


def _png_tree(root: Path, classes: tuple[str, ...], train: int, test: int) -> Path:
    """An image folder ``root/{train,test}/<class>/<i>.png`` of real PNGs, one colour per class."""
    from PIL import Image

    for c, cls in enumerate(classes):
        for part, n in (("train", train), ("test", test)):
            (root / part / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.new("RGB", (20, 18), (60 * c + i, 200 - 50 * c, 30)).save(
                    root / part / cls / f"{i}.png"
                )
    return root


def test_an_image_folder_is_a_source_dataset(tmp_path: Path) -> None:
    """``source_dataset: ./my_source`` reuses a researcher's own images: its classes are the
    units, the selected classes' train images the source stream; a bad folder or ``k`` beyond its
    classes is refused at construction, naming ``source_dataset`` / ``k``."""
    src = _png_tree(tmp_path / "my_source", ("ants", "bees", "moths", "wasps"), train=6, test=1)
    t = make(_config(tmp_path, source_dataset=str(src), selection="uot", k=2, image_size=32, epochs=1))
    result = t.step()
    chosen = json.loads((Path(t.logdir) / "selection.json").read_text())["selected_units"]
    assert len(chosen) == 2 and set(chosen) <= {0, 1, 2, 3}
    assert result["selection/num_images"] == 2 * 6  # every train image of the two chosen classes
    labels = t.source_stream.base.targets[t.source_stream.indices]
    assert sorted(set(labels.tolist())) == sorted(chosen)
    assert t.source_stream[0][0].shape == (3, 32, 32)
    with pytest.raises(ConfigError, match="k: 5 .*4 classes of"):
        UotSelectionConfig.from_dict({"source_dataset": str(src), "k": 5})
    with pytest.raises(ConfigError, match=r"source_dataset: .*no/such .*train/<class>/<image>"):
        UotSelectionConfig.from_dict({"source_dataset": str(tmp_path / "no/such"), "k": 2})


def test_a_relative_source_folder_reaches_the_trials_absolute(tmp_path: Path, monkeypatch) -> None:
    """Trials run in their own directories: the runner makes a source folder's path absolute,
    fixed, as a grid axis or in points_to_evaluate, and leaves registered names as they are."""
    from ftsweep.config.spec import parse_spec
    from ftsweep.runner import prepare_paths

    _png_tree(tmp_path / "my_source", ("ants", "bees", "moths"), train=6, test=1)
    monkeypatch.chdir(tmp_path)
    base = {"name": "u", "method": "uot_selection", "dataset": "digits_target", "pretrained": "none"}
    config = {"k": 2, "labels_per_class": 4, "milestones": []}
    fixed = parse_spec({**base, "config": {**config, "source_dataset": "./my_source"}})
    (job,) = prepare_paths(fixed, fixed.jobs(), tmp_path / "results")
    assert job.fixed["source_dataset"] == str((tmp_path / "my_source").resolve())
    grid = parse_spec(
        {
            **base,
            "config": config,
            "search_space": {"source_dataset": ["my_source", "digits_source"]},
            "points_to_evaluate": [{"source_dataset": "my_source"}],
        }
    )
    (job,) = prepare_paths(grid, grid.jobs(), tmp_path / "results")
    assert job.space["source_dataset"] == {
        "grid_search": [str((tmp_path / "my_source").resolve()), "digits_source"]
    }
    assert job.points == ({"source_dataset": str((tmp_path / "my_source").resolve())},)
