"""One Tune experiment for all jobs: per-job searchers and schedulers behind Tune's single ones."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from ray import tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from ftsweep.routing import JOB_KEY, JobScheduler, JobSearcher, VariantSearcher, variants


def test_variants_pair_random_draws_across_cells_and_seeds() -> None:
    space = {"a": tune.grid_search([1, 2]), "b": 3, "c": tune.uniform(0, 1)}
    out = variants(space, seeds=[0, 1], num_samples=2, random_state=7)
    assert len(out) == 2 * 2 * 2
    # run order: sample, then cell (a), then seed
    assert [(o["a"], o["seed"]) for o in out] == [(1, 0), (1, 1), (2, 0), (2, 1)] * 2
    assert all(o["b"] == 3 for o in out)
    first, second = {o["c"] for o in out[:4]}, {o["c"] for o in out[4:]}
    assert len(first) == len(second) == 1 and first != second  # one draw per sample
    assert variants(space, [0, 1], 2, 7) == out  # seeded
    assert variants({}, [3], 1, 0) == [{"seed": 3}]


def _drain(searcher: Searcher, n: int) -> list:
    return [searcher.suggest(f"t{i}") for i in range(n)]


COMPLETED: list[tuple[str, str]] = []


class Recording(VariantSearcher):
    def on_trial_complete(self, trial_id, result=None, error=False):
        COMPLETED.append((self.name, trial_id))


def test_job_searcher_alternates_jobs_routes_results_and_finishes(tmp_path) -> None:
    completed = COMPLETED
    completed.clear()
    a = Recording([{"x": 1}, {"x": 2}, {"x": 3}], "m", "max")
    b = Recording([{"x": 10}], "m", "max")
    a.name, b.name = "A", "B"
    search = JobSearcher({"A": a, "B": b}, {"A": {"f": "a"}, "B": {"f": "b"}}, "m", "max")
    got = _drain(search, 2)
    assert got == [{"f": "a", "x": 1, JOB_KEY: "A"}, {"f": "b", "x": 10, JOB_KEY: "B"}]

    search.save(str(tmp_path / "s.pkl"))
    copy = JobSearcher({}, {}, "m", "max")
    copy.restore(str(tmp_path / "s.pkl"))
    rest = _drain(copy, 3)
    assert rest[:2] == [{"f": "a", "x": 2, JOB_KEY: "A"}, {"f": "a", "x": 3, JOB_KEY: "A"}]
    assert rest[2] == Searcher.FINISHED

    search.on_trial_complete("t1", {"m": 1.0})
    search.on_trial_complete("t0", {"m": 1.0})
    assert completed == [("B", "t1"), ("A", "t0")]


def test_job_searcher_skips_a_job_that_has_nothing_now() -> None:
    class Waiting(Searcher):
        def suggest(self, trial_id):
            return None

    search = JobSearcher(
        {"A": Waiting(metric="m", mode="max"), "B": VariantSearcher([{"x": 1}], "m", "max")},
        {"A": {}, "B": {}},
        "m",
        "max",
    )
    assert search.suggest("t0") == {"x": 1, JOB_KEY: "B"}
    assert search.suggest("t1") is None  # A waits (e.g. for results), B is done: not FINISHED


def _trial(job: str, status: str = Trial.PENDING):
    return SimpleNamespace(config={JOB_KEY: job}, status=status)


class _Recorder(FIFOScheduler):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, int]] = []

    def on_trial_add(self, tune_controller, trial):
        self.events.append(("add", len(tune_controller.get_trials())))

    def on_trial_result(self, tune_controller, trial, result):
        self.events.append(("result", len(tune_controller.get_trials())))
        return TrialScheduler.STOP if result.get("stop") else TrialScheduler.CONTINUE


def test_job_scheduler_routes_every_event_to_the_trials_job() -> None:
    trials = [_trial("A", Trial.RUNNING), _trial("B"), _trial("A"), _trial("B")]
    controller = SimpleNamespace(get_trials=lambda: trials)
    a, b = _Recorder(), _Recorder()
    sched = JobScheduler({"A": a, "B": b})
    sched.on_trial_add(controller, trials[1])
    assert sched.on_trial_result(controller, trials[0], {"stop": True}) == TrialScheduler.STOP
    # each scheduler sees only its own job's two trials
    assert a.events == [("result", 2)] and b.events == [("add", 2)]
    # the first-added pending trial among what the jobs' FIFO schedulers would run
    assert sched.choose_trial_to_run(controller) is trials[1]
    assert sched.choose_trial_to_run(controller) is trials[1]  # idempotent
    trials[1].status = Trial.RUNNING
    assert sched.choose_trial_to_run(controller) is trials[2]


def test_a_jobs_fifo_scheduler_never_picks_another_jobs_trial() -> None:
    trials = [_trial("B"), _trial("A")]
    controller = SimpleNamespace(get_trials=lambda: trials)

    class Holding(FIFOScheduler):  # job B's scheduler holds its trials back
        def choose_trial_to_run(self, tune_controller):
            return None

    sched = JobScheduler({"A": FIFOScheduler(), "B": Holding()})
    assert sched.choose_trial_to_run(controller) is trials[1]


@pytest.mark.parametrize("searcher", ["grid", "optuna"])
def test_build_search_counts_every_trial(searcher: str) -> None:
    from ftsweep.config.spec import parse_spec
    from ftsweep.runner import build_search

    spec = parse_spec(
        {
            "name": "t",
            "methods": [
                {"method": "ce", "search_space": {"lr": [0.1, 0.01, 0.001]}},
                {"method": "scl", "search_space": {"lambda_": [0.1, 0.5]}},
            ],
            "datasets": ["digits", "digits_target"],
            "pretrained": "none",
            "seeds": [0, 1],
            "searcher": searcher,
            # a grid draws nothing anew: num_samples > 1 would repeat its cells (refused)
            "num_samples": 2 if searcher == "optuna" else 1,
        }
    )
    search, sched, total = build_search(spec, spec.jobs())
    if searcher == "grid":
        assert total == 2 * (3 + 2) * 2  # datasets × cells × seeds
    else:
        assert total == 4 * 2 * 2  # jobs × samples × seeds
    assert set(sched.schedulers) == {j.name for j in spec.jobs()}
    configs = []
    for i in range(total + 1):
        out = search.suggest(f"t{i}")
        if isinstance(out, dict):
            configs.append(out)
            search.on_trial_complete(f"t{i}", {"best/val/acc": 0.5})
    assert len(configs) == total
    for c in configs:
        job = next(j for j in spec.jobs() if j.name == c[JOB_KEY])
        assert c["_method"] == job.method and c["dataset"] == job.dataset
    per_job = {j.name: sum(c[JOB_KEY] == j.name for c in configs) for j in spec.jobs()}
    if searcher == "optuna":  # each job's own budget, whatever order the jobs finish in
        assert set(per_job.values()) == {4}
    if searcher == "grid":
        assert per_job == {"ce-digits": 6, "ce-digits_target": 6, "scl-digits": 4, "scl-digits_target": 4}
        cells = {(c[JOB_KEY], c.get("lr"), c.get("lambda_"), c["seed"]) for c in configs}
        assert len(cells) == total  # each cell × seed once


def test_upstream_tasks_build_each_shared_artefact_once() -> None:
    """Stage-1 checkpoints: one upstream build per distinct stage-1 config, whatever the seeds
    and the other axes; no build for trials without target pretraining."""
    from ftsweep.config.spec import parse_spec
    from ftsweep.runner import build_search, upstream_tasks

    spec = parse_spec(
        {
            "name": "t",
            "methods": [
                {
                    "method": "fixmatch",
                    "search_space": {"stage1": [None, {"objective": "byol"}, {"objective": "moco_v2"}]},
                },
                {"method": "supervised", "search_space": {"stage1": [None, {"objective": "byol"}]}},
            ],
            "dataset": "digits",
            "pretrained": "none",
            "config": {"labels_per_class": 3, "stage1_defaults": {"epochs": 1, "batch_size": 32}},
            "seeds": [0, 1, 2],
        }
    )
    search, _, total = build_search(spec, spec.jobs())
    assert total == (3 + 2) * 3
    todo = upstream_tasks(spec, spec.jobs(), search)
    assert len(todo) == 2  # byol (shared by both methods and every seed) and moco
    assert {cfg["stage1"]["objective"] for _, cfg in todo.values()} == {"byol", "moco_v2"}
