"""MoCo projection heads read from checkpoints in the official key layouts (v1, v2, v3).

The official MoCo v2 file (facebookresearch/moco ``main_moco.py``) is
``{"epoch", "arch", "state_dict", "optimizer"}`` with DistributedDataParallel keys
``module.encoder_q.*`` / ``module.encoder_k.*`` / ``module.queue`` / ``module.queue_ptr``; with
``--mlp`` the query head is ``encoder_q.fc = Sequential(Linear(d, d), ReLU, Linear(d, 128))``,
i.e. keys ``fc.0.*`` and ``fc.2.*``. Outputs are compared with the layers written out by hand
in float64.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from ftsweep.backbones import create_backbone
from ftsweep.backbones.checkpoint import CheckpointError, load_backbone_weights, load_projection_head

D, OUT = 24, 128


def _randn(g: torch.Generator, *shape: int) -> Tensor:
    return torch.randn(*shape, generator=g)


def _mlp(dims: tuple[int, ...], seed: int) -> dict[str, Tensor]:
    """``fc.<2i>.weight|bias`` of ``Sequential(Linear, ReLU, Linear, …)``."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        out[f"fc.{2 * i}.weight"] = _randn(g, b, a)
        out[f"fc.{2 * i}.bias"] = _randn(g, b)
    return out


def _moco_file(
    path: Path, head_q: dict[str, Tensor], head_k: dict[str, Tensor], prefix: str = "encoder_q."
) -> Path:
    g = torch.Generator().manual_seed(9)
    body = {"conv1.weight": _randn(g, 8, 3, 3, 3), "bn1.weight": _randn(g, 8)}
    state = {
        **{f"module.{prefix}{k}": v for k, v in {**body, **head_q}.items()},
        **{f"module.encoder_k.{k}": -v for k, v in {**body, **head_k}.items()},
        "module.queue": _randn(g, OUT, 16),
        "module.queue_ptr": torch.zeros(1, dtype=torch.long),
    }
    optimizer = {"state": {}, "param_groups": [{"lr": 0.03, "params": [0, 1]}]}
    torch.save({"epoch": 800, "arch": "resnet50", "state_dict": state, "optimizer": optimizer}, path)
    return path


def _linear64(x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
    y = x.double() @ w.double().T
    return y if b is None else y + b.double()


def test_moco_v2_head_is_linear_relu_linear_of_the_query_encoder(tmp_path: Path) -> None:
    q, k = _mlp((D, D, OUT), seed=1), _mlp((D, D, OUT), seed=2)
    path = _moco_file(tmp_path / "moco_v2_800ep_pretrain.pth.tar", q, k)
    head = load_projection_head(path)  # format auto → moco_v2
    assert not head.training
    assert [type(m) for m in head] == [nn.Linear, nn.ReLU, nn.Linear]
    x = torch.randn(5, D, generator=torch.Generator().manual_seed(3))
    hidden = torch.clamp(_linear64(x, q["fc.0.weight"], q["fc.0.bias"]), min=0)
    expected = _linear64(hidden, q["fc.2.weight"], q["fc.2.bias"])
    with torch.no_grad():
        got = head(x)
    assert got.shape == (5, OUT)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(load_projection_head(path, format="moco_v2")(x), got)


def test_moco_v1_head_is_one_linear(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(4)
    q = {"fc.weight": _randn(g, OUT, D), "fc.bias": _randn(g, OUT)}
    path = _moco_file(tmp_path / "moco_v1.pth.tar", q, q)
    head = load_projection_head(path)
    assert isinstance(head, nn.Linear) and (head.in_features, head.out_features) == (D, OUT)
    x = torch.randn(3, D, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(
            head(x).double(), _linear64(x, q["fc.weight"], q["fc.bias"]), rtol=1e-5, atol=1e-5
        )


def test_moco_v3_head_with_batchnorm(tmp_path: Path) -> None:
    """base_encoder.fc = Linear(no bias), BN, ReLU, Linear(no bias), BN(affine=False)."""
    g = torch.Generator().manual_seed(5)
    q = {
        "fc.0.weight": _randn(g, 32, D),
        "fc.1.weight": _randn(g, 32),
        "fc.1.bias": _randn(g, 32),
        "fc.1.running_mean": _randn(g, 32),
        "fc.1.running_var": torch.rand(32, generator=g) + 0.5,
        "fc.1.num_batches_tracked": torch.tensor(7),
        "fc.3.weight": _randn(g, 16, 32),
        "fc.4.running_mean": _randn(g, 16),
        "fc.4.running_var": torch.rand(16, generator=g) + 0.5,
        "fc.4.num_batches_tracked": torch.tensor(7),
    }
    path = _moco_file(tmp_path / "moco_v3.pth.tar", q, q, prefix="base_encoder.")
    head = load_projection_head(path)
    assert [type(m) for m in head] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d]
    x = torch.randn(4, D, generator=g)

    def bn(z: Tensor, i: int, affine: bool) -> Tensor:
        m, v = q[f"fc.{i}.running_mean"].double(), q[f"fc.{i}.running_var"].double()
        z = (z - m) / torch.sqrt(v + 1e-5)
        return z * q[f"fc.{i}.weight"].double() + q[f"fc.{i}.bias"].double() if affine else z

    h = torch.clamp(bn(_linear64(x, q["fc.0.weight"], None), 1, affine=True), min=0)
    expected = bn(_linear64(h, q["fc.3.weight"], None), 4, affine=False)
    with torch.no_grad():
        torch.testing.assert_close(head(x).double(), expected, rtol=1e-5, atol=1e-5)


def test_checkpoint_without_head_or_of_another_format_is_refused(tmp_path: Path) -> None:
    path = _moco_file(tmp_path / "nohead.pth.tar", {}, {})
    with pytest.raises(CheckpointError, match=r"has no projection head: no key starts with encoder_q\.fc\."):
        load_projection_head(path)
    tv = tmp_path / "torchvision.pth"
    torch.save({"conv1.weight": torch.randn(8, 3, 3, 3), "fc.weight": torch.randn(10, 8)}, tv)
    with pytest.raises(CheckpointError, match=r"format 'timm'.*moco_v2 checkpoints only"):
        load_projection_head(tv)
    with pytest.raises(CheckpointError, match=r"format 'simclr'.*moco_v2 checkpoints only"):
        load_projection_head(path, format="simclr")


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (
            {**_mlp((D, D, OUT), 1), "fc.0.scale": torch.ones(D)},
            r"unexpected projection-head key encoder_q\.fc\.0\.scale",
        ),
        ({k.replace("fc.0", "fc.1"): v for k, v in _mlp((D, D, OUT), 1).items()}, "starts at fc.1, not fc.0"),
        (
            {**_mlp((D, D), 1), "fc.2.weight": torch.randn(OUT, D + 1)},
            r"fc\.2 takes 25 features, fc\.\* before it gives 24",
        ),
        ({"fc.0.bias": torch.randn(D)}, r"fc\.0 is neither a Linear"),
    ],
)
def test_malformed_heads_are_named(head: dict[str, Tensor], message: str, tmp_path: Path) -> None:
    path = _moco_file(tmp_path / "bad.pth.tar", head, head)
    with pytest.raises(CheckpointError, match=message):
        load_projection_head(path)


def test_backbone_import_still_drops_the_head_strictly(tmp_path: Path) -> None:
    """The strict backbone import of a small CNN MoCo checkpoint is unaffected by the head."""
    body = create_backbone("small_cnn").state_dict()
    body = {k: v + 1 if v.is_floating_point() else v for k, v in body.items()}
    path = tmp_path / "moco_small_cnn.pth.tar"
    q = {**body, **_mlp((128, 128, OUT), 1)}
    torch.save({"state_dict": {f"module.encoder_q.{k}": v for k, v in q.items()}}, path)
    backbone = create_backbone("small_cnn")
    load_backbone_weights(backbone, path, format="moco_v2")
    assert all(torch.equal(backbone.state_dict()[k], v) for k, v in body.items())
    assert load_projection_head(path, format="moco_v2")[2].out_features == OUT
