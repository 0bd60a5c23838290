"""The demo's models: real scikit-learn classifiers of different quality, trained on users the
simulated world generates (nothing is downloaded), saved as ``.skops`` files the router loads.

Each predicts the probability that a user clicks, from :data:`~splitlab.simulation.world.FEATURES`:
``ranker:1`` is a logistic regression on the user's attributes alone, ``ranker:2`` a logistic
regression on the attributes, the history and their pairwise products. (Both are kinds the
router's skops loader trusts: no custom or tree types.) Their quality (ROC AUC on users they
were not trained on) is measured here and stored in the registry's metadata.

The package ships both models as this module trains them (:data:`BUNDLE`, written by
``python -m splitlab.simulation.models``), so ``make run`` registers them without training
(training took 4 s on a quiet machine and 19 s at load 14); a unit test checks that the bundled
files are what :func:`train` produces from the code as it is.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from splitlab.simulation.world import FEATURES, World


@dataclass(frozen=True)
class DemoModel:
    name: str
    version: str
    description: str
    features: tuple[str, ...]
    """The columns of :data:`FEATURES` it uses (it takes all of them, and ignores the rest)."""
    interactions: bool = False
    """Pairwise products of the features too (a quadratic model)."""

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def artifact(self) -> str:
        return f"{self.name}-{self.version}.skops"


DEMO_MODELS: tuple[DemoModel, ...] = (
    DemoModel(
        "ranker",
        "1",
        "logistic regression on the user's attributes only",
        ("tenure_days", "is_mobile", "country_index"),
    ),
    DemoModel(
        "ranker",
        "2",
        "logistic regression on every feature and their pairwise products",
        FEATURES,
        interactions=True,
    ),
)


BUNDLE = Path(__file__).with_name("bundled_models")
"""The shipped demo models: the ``.skops`` files and ``models.json`` (their AUC and rows)."""
BUNDLE_SEED = 7
"""The world the bundled models were trained on (``World(seed=BUNDLE_SEED)``)."""


@dataclass(frozen=True)
class TrainedModel:
    model: DemoModel
    path: Path
    auc: float
    rows: int

    def registration(self) -> dict[str, Any]:
        """The body of the router's ``POST /models`` for this file."""
        return {
            "name": self.model.name,
            "version": self.model.version,
            "flavor": "sklearn",
            "artifact": self.path.name,
            "timeout_ms": 2000,
            "input_schema": [{"name": n, "type": "float"} for n in FEATURES],
            "metadata": {
                "description": self.model.description,
                "holdout_auc": round(self.auc, 4),
                "trained_rows": self.rows,
                "trained_by": "splitlab.simulation.models",
            },
        }


def training_data(world: World, users: int) -> tuple[np.ndarray, np.ndarray]:
    """Features and observed clicks of ``users`` users of ``world`` under control's model."""
    x = np.empty((users, len(FEATURES)))
    y = np.empty(users)
    for index in range(users):
        user = world.user(index, prefix="train")
        x[index] = [user.features[name] for name in FEATURES]
        y[index] = 1.0 if world.outcomes(user, "history") else 0.0
    return x, y


def train(world: World, store: Path, users: int = 12_000) -> list[TrainedModel]:
    """Fit every demo model on ``users`` users (three quarters; the rest measure the AUC) and
    write it to ``store``; returns what was written."""
    import skops.io
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler

    x, y = training_data(world, users)
    cut = users * 3 // 4
    store.mkdir(parents=True, exist_ok=True)
    trained: list[TrainedModel] = []
    for model in DEMO_MODELS:
        columns = [FEATURES.index(name) for name in model.features]
        select = ColumnTransformer([("used", StandardScaler(), columns)], remainder="drop")
        steps: list[tuple[str, Any]] = [("select", select)]
        if model.interactions:
            steps.append(("interactions", PolynomialFeatures(degree=2)))
        estimator = Pipeline([*steps, ("fit", LogisticRegression(C=0.5, max_iter=500))])
        estimator.fit(x[:cut], y[:cut])
        auc = float(roc_auc_score(y[cut:], estimator.predict_proba(x[cut:])[:, 1]))
        path = store / model.artifact
        skops.io.dump(estimator, path)
        trained.append(TrainedModel(model, path, auc, cut))
    return trained


def bundled(bundle: Path = BUNDLE) -> list[TrainedModel]:
    """The shipped models (trained on ``World(seed=BUNDLE_SEED)``), as :func:`train` returned
    them when the bundle was written."""
    facts = json.loads((bundle / "models.json").read_text(encoding="utf-8"))
    return [
        TrainedModel(m, bundle / m.artifact, facts[m.ref]["auc"], facts[m.ref]["rows"])
        for m in DEMO_MODELS
    ]


def demo_models(store: Path, seed: int = BUNDLE_SEED) -> list[TrainedModel]:
    """The demo models in ``store``: the bundled files copied there for the bundle's seed,
    trained for any other."""
    if seed != BUNDLE_SEED:
        return train(World(seed=seed), store)
    store.mkdir(parents=True, exist_ok=True)
    copies = []
    for model in bundled():
        target = store / model.path.name
        shutil.copyfile(model.path, target)
        copies.append(replace(model, path=target))
    return copies


def write_bundle(bundle: Path = BUNDLE) -> list[TrainedModel]:
    """Train the demo models on ``World(seed=BUNDLE_SEED)`` into ``bundle`` with their facts."""
    trained = train(World(seed=BUNDLE_SEED), bundle)
    facts = {t.model.ref: {"auc": t.auc, "rows": t.rows} for t in trained}
    (bundle / "models.json").write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    return trained


if __name__ == "__main__":
    for written in write_bundle(Path(sys.argv[1]) if len(sys.argv) > 1 else BUNDLE):
        print(f"{written.path} (AUC {written.auc:.3f})")
