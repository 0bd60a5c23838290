"""The demo models: real scikit-learn models the router's loader trusts, of different quality."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import skops.io

from splitlab.simulation.models import DEMO_MODELS, train, training_data
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
