"""``stop:``: a threshold the value rises to (``above``, Tune's rule for a plain number) or falls to
(``below``); a plain number on a metric that falls as it improves is refused, since Tune would stop
every trial that starts above it after its first epoch."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ftsweep.config import ConfigError
from ftsweep.config.spec import parse_spec
from ftsweep.schedulers import ThresholdStopper

BASE = {"name": "s", "method": "ce", "dataset": "digits", "pretrained": "none"}


def _stop(stop: dict) -> dict:
    return parse_spec({**BASE, "stop": stop}).stop


def test_parsed_rules() -> None:
    assert _stop({"val/acc": 95}) == {"val/acc": ("above", 95.0)}  # Tune's rule, as before
    assert _stop({"val/loss": {"below": 0.1}}) == {"val/loss": ("below", 0.1)}
    assert _stop({"val/loss": {"above": 5}, "training_iteration": 3}) == {
        "val/loss": ("above", 5.0),
        "training_iteration": ("above", 3.0),
    }


@pytest.mark.parametrize(
    ("stop", "message"),
    [
        (
            {"val/loss": 0.1},
            "stop.val/loss: 0.1 — is a number for a metric that falls as it improves: Tune stops once the "
            "value rises to it (>=), so every trial that starts above 0.1 stops after its first epoch; "
            "write {below: 0.1} to stop once it falls to 0.1, or {above: 0.1} to stop a trial that diverges",
        ),
        ({"train/ce": 0.5}, "stop.train/ce: 0.5 — is a number for a metric that falls"),
        ({"val/loss": {"under": 0.1}}, "stop.val/loss: {'under': 0.1} — must be {below: x}"),
        ({"val/loss": {"below": 0.1, "above": 3}}, "must be {below: x} (stop once the value falls to x)"),
        ({"val/loss": {"below": "low"}}, "x a finite number"),
        ({"val/acc": float("nan")}, "stop.val/acc: nan — must be a number"),
        ({"val/acc": True}, "stop.val/acc: True — must be a number"),
        ({"val/acc": 0.95}, "stop.val/acc: 0.95 — must be in (1, 100]: val/acc is reported in percent"),
        ({"best/val/acc": 150}, "stop.best/val/acc: 150 — must be in (1, 100]"),
        ({"val/mpa": {"below": 0.2}}, "stop.val/mpa: {'below': 0.2} — must be in (1, 100]"),
        ({"test/acc": 90}, "stop.test/acc: 90 — must not be a test metric"),
    ],
)
def test_refused(stop: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        _stop(stop)
    assert message in str(err.value)


def test_the_stopper_by_hand() -> None:
    stopper = ThresholdStopper({"val/loss": ("below", 0.25), "val/acc": ("above", 90.0)})
    assert not stopper("t", {"val/loss": 0.26, "val/acc": 89.9})
    assert stopper("t", {"val/loss": 0.25, "val/acc": 10.0})  # <= 0.25
    assert stopper("t", {"val/loss": 3.0, "val/acc": 90.0})  # >= 90
    assert not stopper("t", {"val/loss": float("nan")})  # no number, no stop
    assert not stopper("t", {"epoch": 1.0}) and not stopper.stop_all()
    with pytest.raises(ValueError, match="above or below"):
        ThresholdStopper({"val/loss": ("under", 0.1)})


def _falling(config: dict) -> None:
    from ray import tune

    for i in range(10):
        tune.report({"val/loss": 1.0 / (i + 1)})  # 1, 0.5, 0.33, 0.25, 0.2 …


@pytest.mark.parametrize(("stop", "iterations"), [({"val/loss": ("below", 0.26)}, 4), ({}, 10)])
def test_tune_stops_a_falling_loss_where_it_falls_to_the_threshold(
    stop: dict, iterations: int, ray_session, tmp_path: Path
) -> None:
    """Through a real Tuner: the 4th report (0.25) is the first <= 0.26. Tune's own dict
    ``{val/loss: 0.26}`` would have stopped at the first (1.0 >= 0.26)."""
    from ray import tune

    tuner = tune.Tuner(
        _falling,
        run_config=tune.RunConfig(
            storage_path=str(tmp_path), stop=ThresholdStopper(stop) if stop else None, verbose=0
        ),
    )
    [result] = tuner.fit()
    assert result.metrics["training_iteration"] == iterations


SPEC = """
name: s
method: ce
dataset: digits
pretrained: none
config: {epochs: 2, labels_per_class: 3}
"""


def _validate(tmp_path: Path, stop: str, capsys) -> tuple[int, str]:
    from ftsweep import cli

    spec = tmp_path / "s.yaml"
    spec.write_text(textwrap.dedent(SPEC) + f"stop: {stop}\n")
    code = cli.main(["validate", str(spec)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "stop", ["{val/loss: {below: 0.05}}", "{sched/epoch: 3}", "{time/epoch_s: 600}", "{time_total_s: 3600}"]
)
def test_a_key_the_trials_report_validates(stop: str, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = _validate(tmp_path, stop, capsys)
    assert code == 0, err


@pytest.mark.parametrize(
    ("stop", "message"),
    [
        (
            "{Val/acc: 90}",
            "stop.Val/acc: 'Val/acc' — is never reported by ce (job ce-digits), so it would stop no trial",
        ),
        ("{fewshot/5way1shot: 50}", "stop.fewshot/5way1shot: 'fewshot/5way1shot' — is never reported by ce"),
        ("{val/s_dbw: 5}", "stop.val/s_dbw: 'val/s_dbw' — is not reported in every epoch by ce"),
    ],
)
def test_a_key_no_trial_reports_is_refused(
    stop: str, message: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = _validate(tmp_path, stop, capsys)
    assert code == 2 and message in err, err
