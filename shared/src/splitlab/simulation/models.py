"""The demo's models: real scikit-learn classifiers of different quality, trained on users the
simulated world generates (nothing is downloaded), saved as ``.skops`` files the router loads.

Each predicts the probability that a user clicks, from :data:`~splitlab.simulation.world.FEATURES`:
``ranker:1`` is a logistic regression on the user's attributes alone, ``ranker:2`` a logistic
regression on the attributes, the history and their pairwise products. (Both are kinds the
router's skops loader trusts: no custom or tree types.) Their quality (ROC AUC on users they
were not trained on) is measured here and stored in the registry's metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
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
