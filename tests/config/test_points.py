"""``points_to_evaluate``: the configurations a job's searcher tries first — ``default`` (the
config dataclass's defaults) or a list — checked at parse, run first by every searcher."""

from __future__ import annotations

import pytest
from ray import tune

from ftsweep.config import ConfigError
from ftsweep.config.space import field_default
from ftsweep.config.spec import parse_spec
from ftsweep.routing import variants
from ftsweep.runner import job_searcher

GRID = {"lambda_": [0.0, 0.5, 0.9], "temperature": [0.1, 0.5]}


def _spec(points, **extra):
    raw = {"name": "t", "method": "schane", "search_space": dict(GRID), "seeds": [0, 1], **extra}
    if points is not None:
        raw["points_to_evaluate"] = points
    return parse_spec(raw)


def test_default_is_the_config_dataclass_default_of_every_searched_parameter() -> None:
    (job,) = _spec("default").jobs()
    assert job.points == ({"lambda_": 0.9, "temperature": 0.5},)  # SchaneConfig's defaults


def test_a_grid_runs_the_points_first_and_keeps_its_trials() -> None:
    spec = _spec([{"lambda_": 0.5, "temperature": 0.1}, {"lambda_": 0.9, "temperature": 0.5}])
    (job,) = spec.jobs()
    searcher, n = job_searcher(spec, job)
    configs = [searcher.suggest(f"t{i}") for i in range(n)]
    cells = [(c["lambda_"], c["temperature"], c["seed"]) for c in configs]
    assert cells[:4] == [(0.5, 0.1, 0), (0.5, 0.1, 1), (0.9, 0.5, 0), (0.9, 0.5, 1)]
    plain = [(c["lambda_"], c["temperature"], c["seed"]) for c in variants(job.space, [0, 1], 1, 0)]
    assert n == 12 and sorted(cells) == sorted(plain)  # the same trials, reordered
    assert cells[4:] == [c for c in plain if c[:2] not in {(0.5, 0.1), (0.9, 0.5)}]


def test_random_domains_take_the_points_as_their_first_samples() -> None:
    space = {"lambda_": tune.uniform(0, 1), "temperature": tune.choice([0.1, 0.5])}
    out = variants(space, [0], 3, 7, points=[{"lambda_": 0.25, "temperature": 0.5}])
    assert len(out) == 3 and out[0] == {"lambda_": 0.25, "temperature": 0.5, "seed": 0}
    # the remaining draws are those the RNG makes first without points
    assert out[1:] == variants(space, [0], 2, 7)


def test_optuna_suggests_the_points_first_once_per_seed() -> None:
    spec = _spec("default", searcher="optuna", num_samples=3)
    (job,) = spec.jobs()
    searcher, n = job_searcher(spec, job)
    first = [searcher.suggest(f"t{i}") for i in range(2)]
    assert n == 6
    assert [(c["lambda_"], c["temperature"]) for c in first] == [(0.9, 0.5)] * 2


@pytest.mark.parametrize(
    ("points", "field", "words"),
    [
        ("best", "points_to_evaluate", "must be `default` or a non-empty list"),
        ([{"lambda_": 0.5}], "points_to_evaluate[0]", "missing: temperature"),
        ([{"lambda_": 0.5, "temperature": 0.1, "lr": 1}], "points_to_evaluate[0].lr", "not a searched"),
        ([{"lambda_": 0.3, "temperature": 0.1}], "points_to_evaluate[0].lambda_", "[0.0, 0.5, 0.9]"),
    ],
)
def test_bad_points_name_the_field_value_and_what_is_allowed(points, field, words) -> None:
    with pytest.raises(ConfigError) as e:
        _spec(points)
    assert e.value.field == field and words in str(e.value)


def test_a_default_outside_the_grid_is_refused() -> None:
    with pytest.raises(ConfigError) as e:
        parse_spec(
            {
                "name": "t",
                "method": "schane",
                "search_space": {"lambda_": [0.0, 0.5]},
                "points_to_evaluate": "default",
            }
        )
    assert e.value.field == "points_to_evaluate.lambda_" and e.value.value == 0.9


def test_more_points_than_samples_and_mixed_spaces_are_refused() -> None:
    space = {"lambda_": tune.uniform(0, 1), "temperature": tune.choice([0.1, 0.5])}
    two = [{"lambda_": 0.2, "temperature": 0.1}, {"lambda_": 0.4, "temperature": 0.5}]
    with pytest.raises(ConfigError, match="2 points but num_samples is 1"):
        parse_spec({"name": "t", "method": "schane", "search_space": space, "searcher": "random",
                    "points_to_evaluate": two})  # fmt: skip
    mixed = {"lambda_": tune.grid_search([0.0, 0.5]), "temperature": tune.uniform(0.1, 1)}
    with pytest.raises(ConfigError, match="mixes grid axes"):
        parse_spec({"name": "t", "method": "schane", "search_space": mixed,
                    "points_to_evaluate": [{"lambda_": 0.5, "temperature": 0.5}]})  # fmt: skip


def test_smoke_keeps_only_the_points_inside_the_shrunk_grid() -> None:
    raw = {"name": "t", "method": "schane", "search_space": dict(GRID),
           "points_to_evaluate": [{"lambda_": 0.0, "temperature": 0.1}, {"lambda_": 0.9, "temperature": 0.5}]}  # fmt: skip
    (job,) = parse_spec(raw, smoke=True).jobs()
    assert job.points == ({"lambda_": 0.0, "temperature": 0.1},)


def test_each_method_of_a_spec_may_name_its_own_points() -> None:
    spec = parse_spec(
        {
            "name": "t",
            "methods": [
                {
                    "method": "schane",
                    "search_space": dict(GRID),
                    "points_to_evaluate": [{"lambda_": 0.5, "temperature": 0.1}],
                },
                {"method": "scl", "search_space": {"lambda_": [0.1, 0.5]}},
            ],
            "points_to_evaluate": "default",
        }  # fmt: skip
    )
    schane, scl = spec.jobs()
    assert schane.points == ({"lambda_": 0.5, "temperature": 0.1},)
    assert scl.points == ({"lambda_": field_default(scl.config_cls, "lambda_")},)  # the spec's default
    with pytest.raises(ConfigError) as e:
        parse_spec({"name": "t", "methods": [{"method": "scl", "search_space": {"lambda_": [0.1, 0.5]},
                                              "points_to_evaluate": [{"lambda_": 0.7}]}]})  # fmt: skip
    assert e.value.field == "methods[0].points_to_evaluate[0].lambda_"
