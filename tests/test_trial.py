"""The trial adapter: a method's own failure ends the trial at once with its reason; a GPU that
torch cannot see is a failure with ``device: auto``, not a silent CPU run."""

from __future__ import annotations

import pytest
import ray
import torch

from ftsweep import trial


def test_a_gpu_torch_cannot_see_fails_with_device_auto(monkeypatch) -> None:
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [0])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"given GPU\(s\) \[0\] but torch sees no CUDA device"):
        trial._check_gpu({"device": "auto"})
    trial._check_gpu({"device": "cpu"})  # honoured: how a CPU machine runs trials on declared GPUs
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [])
    trial._check_gpu({"device": "auto"})


def test_a_methods_own_error_ends_the_trial_with_its_reason() -> None:
    """Tune would retry an exception; the trial reports it as a final, failed result instead."""

    class Boom:
        config_cls = None

        def __init__(self, config, logdir=None):
            self.device = torch.device("cpu")
            self.calls = 0

        def step(self):
            raise FloatingPointError("non-finite training loss nan at batch 0")

    class BoomTrainable(trial.MethodTrainable):
        method_cls = Boom

    t = BoomTrainable(config={})
    out = t.step()
    assert out["done"] is True and out[trial.FAILED_KEY] == 1.0
    assert out[trial.REASON_KEY].startswith(
        "FloatingPointError: non-finite training loss nan at batch 0 (at "
    )
    assert out[trial.DEVICE_KEY] == "cpu"


def test_sigterm_takes_the_same_graceful_stop_as_ctrl_c(monkeypatch) -> None:
    """Tune stops gracefully on its own SIGUSR1; the driver's SIGINT and SIGTERM both call that
    stop, and a second signal leaves at once."""
    import os
    import signal

    from ftsweep.runner import stop_signals

    stops = []
    term_before = signal.getsignal(signal.SIGTERM)
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: stops.append(signum))
    try:
        with stop_signals() as caught:
            assert os.environ["TUNE_DISABLE_SIGINT_HANDLER"] == "1"
            os.kill(os.getpid(), signal.SIGTERM)
            assert caught == ["SIGTERM"] and stops == [signal.SIGUSR1]
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
            assert caught == ["SIGTERM", "SIGINT"] and len(stops) == 1
        assert signal.getsignal(signal.SIGTERM) is term_before  # restored
        assert "TUNE_DISABLE_SIGINT_HANDLER" not in os.environ
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_a_spec_metric_the_method_does_not_report_fails_the_trial_naming_what_it_reports() -> None:
    class Fine:
        config_cls = None

        def __init__(self, config, logdir=None):
            self.device = torch.device("cpu")

        def step(self):
            return {"val/acc": 50.0, "best/val/acc": 50.0, "train/loss": 1.0, "epoch": 1.0}

    class FineTrainable(trial.MethodTrainable):
        method_cls = Fine

    ok = FineTrainable(config={trial.METRIC_KEY: "best/val/acc"}).step()
    assert ok["best/val/acc"] == 50.0 and trial.FAILED_KEY not in ok
    out = FineTrainable(config={trial.METRIC_KEY: "best/val/accuracy"}).step()
    assert out["done"] is True and out[trial.FAILED_KEY] == 1.0
    assert out[trial.REASON_KEY] == (
        "ConfigError: metric: 'best/val/accuracy' is not among the results of this method; "
        "it reports best/val/acc, train/loss, val/acc"
    )


def test_every_suggested_trial_carries_the_spec_metric() -> None:
    from ftsweep.config.spec import parse_spec
    from ftsweep.runner import build_search

    spec = parse_spec({"name": "t", "methods": ["ce", "scl"], "metric": "val/loss", "mode": "min"})
    search, _, total = build_search(spec, spec.jobs())
    configs = [search.suggest(f"t{i}") for i in range(total)]
    assert total == 2 and [c[trial.METRIC_KEY] for c in configs] == ["val/loss", "val/loss"]
