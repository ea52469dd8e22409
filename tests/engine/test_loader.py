"""make_loader's seeding (independent of workers and of re-use), num_workers auto, precision and
channels_last resolution, autocast / GradScaler in train_epoch, and the config fields."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from ftsweep.config import ConfigError, TrainConfig
from ftsweep.engine import (
    make_loader,
    reseed,
    resolve_channels_last,
    resolve_num_workers,
    resolve_precision,
    train_epoch,
    trial_cpus,
)


class _Noisy(Dataset):
    """Item i: (torch.rand(2) — the item's 'augmentation', i)."""

    def __len__(self) -> int:
        return 10

    def __getitem__(self, i: int):
        return torch.rand(2), i


def _epoch(loader) -> list[torch.Tensor]:
    return [torch.cat([x, i[:, None].float()], dim=1) for x, i in loader]


def test_same_seed_same_batches_with_and_without_workers() -> None:
    a = _epoch(make_loader(_Noisy(), batch_size=4, shuffle=True, seed=3, num_workers=0))
    b = _epoch(make_loader(_Noisy(), batch_size=4, shuffle=True, seed=3, num_workers=2))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    c = _epoch(make_loader(_Noisy(), batch_size=4, shuffle=True, seed=4, num_workers=0))
    assert not torch.equal(a[0], c[0])


def test_num_samples_draws_successive_permutations_in_full_batches() -> None:
    """Stage 2's streams: 5 batches of 4 from 10 items are two whole permutations of the items,
    each once, in batches of exactly 4; same with workers; a fresh order for each seed."""
    loader = make_loader(_Noisy(), batch_size=4, shuffle=True, seed=3, drop_last=True, num_samples=20)
    a = _epoch(loader)
    assert len(loader) == len(a) == 5 and all(len(b) == 4 for b in a)
    order = torch.cat(a)[:, 2].long().tolist()
    assert sorted(order[:10]) == sorted(order[10:]) == list(range(10))
    assert order[:10] != order[10:], "the second pass is a new permutation"
    views = torch.cat(a)[:, :2]
    assert len({tuple(v.tolist()) for v in views}) == 20, "each draw of an item has its own seed"
    b = _epoch(
        make_loader(
            _Noisy(), batch_size=4, shuffle=True, seed=3, num_workers=2, drop_last=True, num_samples=20
        )
    )
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    c = _epoch(make_loader(_Noisy(), batch_size=4, shuffle=True, seed=4, drop_last=True, num_samples=20))
    assert torch.cat(c)[:, 2].long().tolist() != order
    # a set smaller than the batch fills it by repetition; the cut after num_samples drops the tail
    small = make_loader(_Noisy(), batch_size=16, shuffle=True, seed=0, drop_last=True, num_samples=32)
    idx = torch.cat(_epoch(small))[:, 2].long().tolist()
    assert len(idx) == 32 and [idx[10 * k : 10 * (k + 1)] for k in range(3)] != [idx[:10]] * 3
    assert all(sorted(idx[10 * k : 10 * (k + 1)]) == list(range(10)) for k in range(3))
    with pytest.raises(ValueError):
        make_loader(_Noisy(), batch_size=4, shuffle=True, num_samples=-1)


def test_reseeded_loader_equals_a_fresh_one_and_keeps_global_rng() -> None:
    kept = make_loader(_Noisy(), batch_size=4, shuffle=True, seed=0)
    _epoch(kept)
    kept.generator.manual_seed(7)
    torch.manual_seed(123)
    reused = _epoch(kept)
    after = torch.rand(1)
    fresh = _epoch(make_loader(_Noisy(), batch_size=4, shuffle=True, seed=7))
    assert all(torch.equal(x, y) for x, y in zip(reused, fresh, strict=True))
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(1)), "loading in the main process leaves the global RNG alone"
    assert not torch.equal(_epoch(kept)[0], reused[0]), "a second pass without re-seeding differs"


def test_reseed_with_the_same_seed_repeats_the_pass() -> None:
    kept = make_loader(_Noisy(), batch_size=4, shuffle=True, seed=2)
    first = _epoch(kept)
    assert not torch.equal(_epoch(kept)[0], first[0]), "without re-seeding the next pass differs"
    kept.generator.manual_seed(2)
    assert not torch.equal(_epoch(kept)[0], first[0]), "the same seed set again is not seen as a re-seed"
    assert all(torch.equal(x, y) for x, y in zip(_epoch(reseed(kept, 2)), first, strict=True))


def test_num_workers_auto_is_trial_cpus_minus_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert trial_cpus() == 1 and resolve_num_workers("auto") == 0
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert resolve_num_workers("auto") == trial_cpus() - 1 >= 0
    assert resolve_num_workers(3) == 3
    with pytest.raises(ValueError):
        resolve_num_workers(-1)


def test_precision_resolution() -> None:
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("auto", "cpu", amp=True) == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("auto", "cuda", amp=False) == "fp32"
    with pytest.raises(ValueError):
        resolve_precision("fp8", "cpu")


def test_channels_last_auto_only_for_conv_nets_on_cuda() -> None:
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3))
    vit_like = nn.Sequential(nn.Conv2d(3, 4, 16, stride=16), nn.Flatten(), nn.Linear(4, 2))
    assert resolve_channels_last("auto", "cuda", conv)
    assert not resolve_channels_last("auto", "cuda", vit_like)
    assert not resolve_channels_last("auto", "cpu", conv)
    assert resolve_channels_last(True, "cpu", vit_like)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_train_epoch_under_autocast_updates_parameters(precision: str) -> None:
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    dtypes = []

    def step(batch):
        x, y = batch
        out = model(x)
        dtypes.append(out.dtype)
        return nn.functional.cross_entropy(out.float(), y), {}

    batches = [(torch.randn(8, 4), torch.randint(0, 2, (8,))) for _ in range(3)]
    logs = train_epoch(step, batches, opt, None, params=model.parameters(), precision=precision, device="cpu")
    assert dtypes[0] == {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    assert torch.isfinite(torch.tensor(logs["loss"]))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_config_fields_and_checks() -> None:
    cfg = TrainConfig()
    assert (cfg.num_workers, cfg.precision, cfg.channels_last, cfg.gpu_augment, cfg.amp) == (
        "auto",
        "auto",
        "auto",
        "auto",
        None,
    )
    assert (
        TrainConfig.from_dict({"num_workers": 0, "gpu_augment": True, "channels_last": False}).num_workers
        == 0
    )
    for bad in ({"num_workers": "many"}, {"num_workers": -1}, {"precision": "fp8"}, {"gpu_augment": "yes"}):
        with pytest.raises(ConfigError):
            TrainConfig.from_dict(bad)
    with pytest.raises(ConfigError, match="amp"):
        TrainConfig.from_dict({"amp": False, "precision": "bf16"})
