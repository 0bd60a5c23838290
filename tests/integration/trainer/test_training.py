"""A training through Postgres, in process (the tasks' code path without the broker): both
model kinds fitted, the better one published, and the switch of versions atomic."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text
from threadpoolctl import threadpool_limits

from splitlab.platform.settings import Settings
from splitlab_trainer.resources import TrainerResources, build_resources
from tests.integration.trainer.conftest import in_use, predictions
from tests.integration.trainer.data import (
    T0,
    Scenario,
    new_scenario,
    store_definitions,
    store_directly,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def resources(trainer_settings: Settings, engine: Engine) -> TrainerResources:
    return build_resources(trainer_settings, engine)


def stored(engine: Engine, scenario: Scenario, units: int, history: int) -> Scenario:
    scenario.add_history(history, seed=1, cutoff=T0 - timedelta(days=7))
    scenario.add_units(units, seed=2)
    store_definitions(engine, scenario)
    store_directly(engine, scenario)
    return scenario


def test_both_kinds_are_fitted_and_the_better_one_is_in_use(
    resources: TrainerResources, engine: Engine
) -> None:
    scenario = stored(engine, new_scenario(), units=800, history=600)
    ids = resources.planner.request(scenario.key, None)
    assert len(ids) == 2
    with threadpool_limits(1):
        summary = resources.trainings.run_many(ids)
    assert summary["trainings"][0]["status"] == "done", summary
    models = {m.kind: m for m in resources.catalogue.many(ids)}
    inside, pre = models["in_experiment"], models["pre_experiment"]
    assert (inside.status, pre.status) == ("done", "done"), (inside.error, pre.error)
    assert inside.family == "gradient_boosting"  # the metric is a step and a wave in spend
    assert inside.rows == 800
    assert inside.notes[0].startswith("read 800 units in "), inside.notes  # where time went
    assert inside.r2 is not None
    assert inside.r2 > 0.5
    assert set(inside.r2_candidates) == {"linear", "gradient_boosting"}
    assert inside.r2_candidates["gradient_boosting"] > inside.r2_candidates["linear"]
    # History: the 600 units seen only before the start, and the experiment's 800 units,
    # whose purchases before their exposure fall in the week before the start.
    assert pre.rows == 1400
    assert pre.cutoff_at == T0 - timedelta(days=7)
    assert pre.r2 is not None
    assert pre.r2 > 0.5
    assert pre.artifact is not None
    for model in (inside, pre):
        assert model.duration_seconds is not None
        assert model.duration_seconds > 0
        assert model.peak_memory_bytes is not None
        assert model.peak_memory_bytes > 10 * 2**20
        assert model.experiment_units == 800
        assert model.progress == 100.0
    chosen = pre if pre.r2 >= inside.r2 else inside
    current = in_use(engine, scenario.key, scenario.metric)
    assert current is not None
    assert current["id"] == chosen.id
    stored_predictions = predictions(engine, scenario.key, scenario.metric)
    assert set(stored_predictions) == set(scenario.units)
    assert {m for _, m in stored_predictions.values()} == {chosen.id}

    # A duplicate delivery of the same task does nothing.
    again = resources.trainings.run_many(ids)
    assert again["trainings"][0]["status"] == "skipped"


def test_a_failed_switch_leaves_the_previous_version_and_its_predictions(
    resources: TrainerResources, engine: Engine
) -> None:
    scenario = stored(engine, new_scenario(), units=400, history=300)
    first = resources.planner.request(scenario.key, scenario.metric)
    with threadpool_limits(1):
        resources.trainings.run_many(first)
    before = in_use(engine, scenario.key, scenario.metric)
    assert before is not None
    kept = predictions(engine, scenario.key, scenario.metric)

    second = resources.planner.request(scenario.key, scenario.metric)
    for model_id in second:
        assert resources.catalogue.start(model_id) is not None
    # The new version's rows hold a unit twice: the COPY fails on the primary key after
    # the old predictions were deleted in the same transaction.
    with pytest.raises(Exception, match="duplicate key"):
        resources.catalogue.complete(
            {second[0]: {"status": "done", "family": "linear"}},
            second[0],
            scenario.key,
            scenario.metric,
            ["u-dup", "u-dup"],
            [1.0, 2.0],
            "linear",
        )
    assert in_use(engine, scenario.key, scenario.metric) == before
    assert predictions(engine, scenario.key, scenario.metric) == kept
    with engine.connect() as connection:
        statuses = connection.execute(
            text("SELECT status FROM trained_models WHERE id = ANY(:ids)"), {"ids": second}
        ).scalars()
        assert set(statuses) == {"running"}, "a re-delivered task must run them again"


def test_requests_name_the_field_and_the_fix(resources: TrainerResources, engine: Engine) -> None:
    from splitlab.platform.errors import InvalidInputError, NotFoundError

    with pytest.raises(NotFoundError, match="no experiment"):
        resources.planner.request("no-such-experiment", None)
    scenario = stored(engine, new_scenario(), units=50, history=0)
    with pytest.raises(InvalidInputError, match="trainable") as caught:
        resources.planner.request(scenario.key, "other_metric")
    assert caught.value.field == "metric"
    ids = resources.planner.request(scenario.key, None)
    resources.trainings.run_many(ids)
    for model in resources.catalogue.many(ids):
        assert model.status == "failed"
        assert model.error is not None
        assert "CUPAC needs at least 200" in model.error


def test_a_version_older_than_its_schedule_allows_is_flagged(
    resources: TrainerResources, engine: Engine
) -> None:
    from splitlab_analyzer.repository import CupacRepository

    scenario = stored(engine, new_scenario(), units=300, history=0)
    ids = resources.planner.request(scenario.key, scenario.metric)
    with threadpool_limits(1):
        resources.trainings.run_many(ids)
    models = CupacRepository(engine).models_in_use(scenario.key)
    named = models[scenario.metric]
    assert named["kind"] == "in_experiment"  # the history holds no feature value: it loses
    assert named["schedule_seconds"] == 4.0
    assert named["stale"] is False
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE trained_models SET trained_at = now() - interval '9 seconds' WHERE in_use "
                 "AND experiment_key = :k"),
            {"k": scenario.key},
        )  # fmt: skip
    named = CupacRepository(engine).models_in_use(scenario.key)[scenario.metric]
    assert named["age_seconds"] >= 9
    assert named["stale"] is True
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE experiments SET status = 'stopped' WHERE key = :k"), {"k": scenario.key}
        )
    assert CupacRepository(engine).models_in_use(scenario.key)[scenario.metric]["stale"] is False


@pytest.mark.parametrize(
    ("aggregation", "window"), [("sum", None), ("count", None), ("any", 3600.0), ("mean", None)]
)
def test_training_rows_equal_the_analyzers_per_unit_values(
    resources: TrainerResources, engine: Engine, aggregation: str, window: float | None
) -> None:
    """The trainer's own SQL gives the analyzer's metric values, pre-period values and
    features (the semantics live in two queries; this keeps them one)."""
    import numpy as np

    from splitlab_analyzer.definitions import MetricDef
    from splitlab_analyzer.results.repository.query import ResultsQuery
    from splitlab_trainer.definitions import MetricSpec
    from splitlab_trainer.features import raw_features, target

    scenario = stored(engine, new_scenario(), units=300, history=0)
    # Units with a second purchase (mean != sum) and one with none in its window.
    extra = scenario.outcomes[:40]
    scenario.outcomes = [o.model_copy(update={"event_id": uuid.uuid4()}) for o in extra]
    scenario.exposures, scenario.features = [], []
    store_directly(engine, scenario)
    definition = MetricDef(
        name="m", source="outcome", outcome_type=scenario.outcome_type,
        aggregation=aggregation,  # type: ignore[arg-type]
        attribution_window_seconds=window, covariates=(scenario.feature,),
    )  # fmt: skip
    query = ResultsQuery(scenario.key, ["control", "treatment"], [definition], {"m": definition})
    with engine.connect() as connection:
        for statement in query.settings_sql(False, 300):
            connection.execute(text(statement))
        expected = connection.execute(text(query.per_unit_sql(False)), query.params).mappings()
        expected = sorted(expected, key=lambda r: r["unit_id"])
    spec = MetricSpec(
        "m", "outcome", scenario.outcome_type, aggregation, window, 14.0, (scenario.feature,)
    )
    experiment = resources.experiments.get(scenario.key)
    assert experiment is not None
    rows = resources.trainings._experiment_rows(experiment, spec, [scenario.feature])
    assert rows.unit_ids == [r["unit_id"] for r in expected]
    y = target(rows, 0, spec)
    raw, _ = raw_features(rows, 0, spec, [scenario.feature], [scenario.feature])
    want_y = np.array([np.nan if r["y0"] is None else r["y0"] for r in expected], dtype=float)
    np.testing.assert_allclose(y, want_y, rtol=1e-12, equal_nan=True)
    missing = [bool(r.get("y0_pre_missing", 0)) for r in expected]
    want_pre = np.array(
        [np.nan if gone else r["y0_pre"] for r, gone in zip(expected, missing, strict=True)],
        dtype=float,
    )
    np.testing.assert_allclose(raw[:, 0], want_pre, rtol=1e-12, equal_nan=True)
    want_f = np.array([np.nan if r["f0_missing"] else r["f0"] for r in expected], dtype=float)
    np.testing.assert_allclose(raw[:, 1], want_f, rtol=1e-12, equal_nan=True)


def test_the_pre_experiment_model_predicts_later_units_without_refitting(
    resources: TrainerResources, engine: Engine
) -> None:
    # Rich history, few experiment units: the pre-experiment model is the better one.
    scenario = stored(engine, new_scenario(), units=300, history=3000)
    first = resources.planner.request(scenario.key, scenario.metric)
    with threadpool_limits(1):
        resources.trainings.run_many(first)
    pre = in_use(engine, scenario.key, scenario.metric)
    assert pre is not None
    assert pre["kind"] == "pre_experiment"
    fitted_at = pre["trained_at"]

    later = new_scenario()
    later.key, later.outcome_type, later.feature = (
        scenario.key, scenario.outcome_type, scenario.feature,
    )  # fmt: skip
    late_units = later.add_units(100, seed=4, start=T0 + timedelta(days=3))
    store_directly(engine, later)
    # Only the in-experiment model is due; the stored pre-experiment model is applied as is.
    ids = resources.catalogue.enqueue(
        "default", scenario.key, scenario.metric, ["in_experiment"], {"in_experiment": 4.0}
    )
    with threadpool_limits(1):
        resources.trainings.run_many(ids)
    current = in_use(engine, scenario.key, scenario.metric)
    assert current is not None
    assert current["id"] == pre["id"]
    assert current["trained_at"] == fitted_at  # not refitted
    assert current["predicted_units"] == 400
    stored_predictions = predictions(engine, scenario.key, scenario.metric)
    assert set(late_units) <= set(stored_predictions)
    assert {m for _, m in stored_predictions.values()} == {pre["id"]}


def test_a_task_that_raises_fails_its_trainings_with_the_reason(
    trainer_settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from splitlab_trainer.celery_app import create_celery
    from splitlab_trainer.training import Trainer

    scenario = stored(engine, new_scenario(), units=250, history=0)
    app = create_celery(trainer_settings)
    app.loader.import_default_modules()  # the worker's imports: the tasks register
    ids = build_resources(trainer_settings, engine).planner.request(scenario.key, None)

    def broken(*args: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(Trainer, "_experiment_rows", broken)
    outcome = app.tasks["splitlab.trainer.train_cupac"].apply(
        kwargs={"experiment_key": scenario.key, "model_ids": ids}
    )
    assert isinstance(outcome.result, RuntimeError)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT status, error FROM trained_models WHERE id = ANY(:ids)"), {"ids": ids}
        ).all()
    assert {r.status for r in rows} == {"failed"}
    assert {r.error for r in rows} == {"error: RuntimeError: the database went away"}


@pytest.mark.parametrize("slices", [2, 3])
def test_a_sliced_read_returns_exactly_the_rows_of_one_query(
    resources: TrainerResources, engine: Engine, slices: int
) -> None:
    """The per-unit rows a training learns from, read as concurrent slices on one snapshot,
    are those one query reads: the same units in the same order, the same values."""
    from splitlab_trainer.repository.training_data import (
        Binder,
        experiment_units_sql,
        history_units_sql,
        read_sliced,
        rows_sql,
        sliced_units,
    )

    scenario = stored(engine, new_scenario(), units=300, history=200)
    experiment = resources.trainings.experiments.get(scenario.key)
    assert experiment is not None
    metric = resources.trainings.experiments.metrics([scenario.metric])[scenario.metric]
    features = list(metric.covariates)
    assert features

    def experiment_query() -> tuple[str, dict[str, object]]:
        bind = Binder()
        units = sliced_units(experiment_units_sql(bind, experiment.key, experiment.variants))
        return rows_sql(units, [metric], features, bind, experiment.key), bind.params

    def history_query() -> tuple[str, dict[str, object]]:
        bind = Binder()
        cutoff = T0 - timedelta(days=7)
        units = sliced_units(
            history_units_sql(bind, [metric], features, cutoff, experiment.key, 7.0)
        )
        return rows_sql(units, [metric], features, bind, experiment.key, 7.0), bind.params

    for query in (experiment_query, history_query):
        sql, params = query()
        whole = read_sliced(engine, sql, params, 1)
        parts = read_sliced(engine, sql, params, slices)
        assert whole.size > 100
        assert parts.unit_ids == whole.unit_ids == sorted(whole.unit_ids)
        assert set(parts.columns) == set(whole.columns)
        for name, values in whole.columns.items():
            assert parts.columns[name].tobytes() == values.tobytes(), name
