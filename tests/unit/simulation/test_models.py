"""The demo models: real scikit-learn models the router's loader trusts, of different quality."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import skops.io

from splitlab.simulation.models import (
    BUNDLE_SEED,
    DEMO_MODELS,
    bundled,
    demo_models,
    train,
    training_data,
)
from splitlab.simulation.world import FEATURES, World


def test_demo_models_are_trusted_skops_files_and_the_challenger_is_better(tmp_path: Path) -> None:
    trained = train(World(seed=11), tmp_path, users=8000)
    assert [t.model for t in trained] == list(DEMO_MODELS)
    x, _ = training_data(World(seed=11), 50)
    for model in trained:
        assert model.path.parent == tmp_path
        assert skops.io.get_untrusted_types(file=model.path) == []
        estimator = skops.io.load(model.path)
        p = estimator.predict_proba(x)[:, 1]
        assert np.all((p > 0) & (p < 1))
        body = model.registration()
        assert [f["name"] for f in body["input_schema"]] == list(FEATURES)
        assert body["metadata"]["holdout_auc"] == round(model.auc, 4)
    control, challenger = trained
    assert challenger.auc > control.auc + 0.03


def test_the_bundled_models_are_what_the_code_trains(tmp_path: Path) -> None:
    """`make run` registers the shipped files instead of training: they must be what `train`
    gives on the bundle's world today (regenerate with `python -m splitlab.simulation.models`)."""
    fresh = train(World(seed=BUNDLE_SEED), tmp_path / "fresh")
    shipped = bundled()
    x, _ = training_data(World(seed=3), 500)
    for new, old in zip(fresh, shipped, strict=True):
        assert (new.model, new.rows, new.auc) == (old.model, old.rows, old.auc)
        assert skops.io.get_untrusted_types(file=old.path) == []
        np.testing.assert_allclose(
            skops.io.load(old.path).predict_proba(x), skops.io.load(new.path).predict_proba(x)
        )
    copies = demo_models(tmp_path / "store")
    assert [c.path.parent for c in copies] == [tmp_path / "store"] * len(DEMO_MODELS)
    assert [c.path.read_bytes() for c in copies] == [s.path.read_bytes() for s in shipped]
    assert [c.registration() for c in copies] == [s.registration() for s in shipped]
