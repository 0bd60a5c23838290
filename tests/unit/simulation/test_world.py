"""The simulated world: reproducible, calibrated, and its truth is what its draws average to."""

from __future__ import annotations

import numpy as np
import pytest

from splitlab.simulation.world import FEATURES, HISTORY, Behaviour, World


def test_the_same_seed_gives_the_same_users_and_outcomes() -> None:
    first, second = World(seed=3), World(seed=3)
    for index in (0, 1, 977):
        assert first.user(index) == second.user(index)
        user = first.user(index)
        assert first.outcomes(user, "m:1", draw=2) == second.outcomes(user, "m:1", draw=2)
    assert World(seed=4).user(0) != first.user(0)


def test_users_arrive_with_every_feature_and_history_value_finite() -> None:
    user = World().user(12)
    assert set(user.features) == set(FEATURES)
    assert set(user.history) == set(HISTORY)
    assert all(np.isfinite(v) for v in (*user.features.values(), *user.history.values()))
    assert user.unit_id == "sim-7-12"


def test_mean_click_probability_is_the_configured_ctr() -> None:
    world = World(ctr=0.07)
    base = np.array([world.user(i).base_ctr for i in range(6000)])
    assert base.mean() == pytest.approx(0.07, abs=0.004)


def test_history_predicts_the_outcome_so_covariates_can_reduce_variance() -> None:
    world = World()
    users = [world.user(i) for i in range(4000)]
    base = np.array([u.base_ctr for u in users])
    clicks = np.array([u.clicks_30d for u in users])
    assert np.corrcoef(base, clicks)[0, 1] > 0.5


def test_a_models_lift_scales_the_click_probability_of_the_users_it_serves() -> None:
    world = World(behaviours={"ranker:2": Behaviour(click=11 / 7)})
    control = world.expected("ranker:1", users=4000)
    challenger = world.expected("ranker:2", users=4000)
    assert challenger["click"] / control["click"] == pytest.approx(11 / 7, rel=0.01)
    assert challenger["revenue"] > control["revenue"]


def test_expected_is_what_the_drawn_outcomes_average_to() -> None:
    world = World(behaviours={"b": Behaviour(click=1.5, revenue=2.0)})
    n = 20_000
    drawn = {"visits": 0.0, "click": 0.0, "conversion": 0.0, "revenue": 0.0}
    for index in range(n):
        user = world.user(index)
        drawn["visits"] += user.visits
        for visit in range(user.visits):
            for event in world.outcomes(user, "b", draw=visit):
                drawn[event.outcome_type] += event.value
    truth = world.expected("b", users=n)
    # Different users (the truth draws its own), so they agree within sampling error.
    assert drawn["visits"] / n == pytest.approx(truth["visits"], rel=0.03)
    assert drawn["click"] / n == pytest.approx(truth["click"], rel=0.05)
    assert drawn["conversion"] / n == pytest.approx(truth["conversion"], rel=0.12)
    assert drawn["revenue"] / n == pytest.approx(truth["revenue"], rel=0.15)
    assert truth["ctr"] == pytest.approx(truth["click"] / truth["visits"])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"ctr": 0.0}, "ctr"), ({"conversion_rate": 1.5}, "conversion_rate"),
     ({"mean_order": -1.0}, "mean_order")],
)  # fmt: skip
def test_a_bad_world_names_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        World(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf")])
def test_a_lift_must_be_positive_and_finite(value: float) -> None:
    with pytest.raises(ValueError, match=r"^click:"):
        Behaviour(click=value)
