"""When a CUPAC training is due (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from splitlab_trainer.scheduling import History, due_kinds

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)
EVERY = {"in_experiment": 900.0, "pre_experiment": 3600.0}


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def test_never_trained_is_due_for_both_kinds() -> None:
    assert due_kinds(NOW, "running", None, 500, EVERY, {}) == ["in_experiment", "pre_experiment"]


def test_each_kind_follows_its_own_frequency_while_units_grow() -> None:
    history = {
        "in_experiment": History(ago(901), 400),
        "pre_experiment": History(ago(901), 400),
    }
    assert due_kinds(NOW, "running", None, 500, EVERY, history) == ["in_experiment"]
    history["pre_experiment"] = History(ago(3601), 400)
    assert due_kinds(NOW, "running", None, 500, EVERY, history) == [
        "in_experiment",
        "pre_experiment",
    ]


def test_not_due_before_the_frequency_or_without_new_units() -> None:
    recent = {k: History(ago(100), 400) for k in EVERY}
    assert due_kinds(NOW, "running", None, 500, EVERY, recent) == []
    old = {k: History(ago(10_000), 500) for k in EVERY}
    assert due_kinds(NOW, "running", None, 500, EVERY, old) == []


def test_a_failing_training_is_retried_at_its_frequency_not_at_every_look() -> None:
    failed = {k: History(ago(100), None) for k in EVERY}
    assert due_kinds(NOW, "running", None, 500, EVERY, failed) == []
    failed = {k: History(ago(4000), None) for k in EVERY}
    assert due_kinds(NOW, "running", None, 500, EVERY, failed) == [
        "in_experiment",
        "pre_experiment",
    ]


def test_once_more_at_stop() -> None:
    before_stop = {k: History(ago(600), 500) for k in EVERY}
    assert due_kinds(NOW, "stopped", ago(300), 500, EVERY, before_stop) == ["in_experiment"]
    after_stop = {k: History(ago(200), 500) for k in EVERY}
    assert due_kinds(NOW, "stopped", ago(300), 500, EVERY, after_stop) == []
