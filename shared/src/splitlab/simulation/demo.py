"""The demo experiment ``make run`` starts: the demo models registered in the router, the
metrics defined in the analyzer, an experiment comparing the two rankers, all idempotent (a
second ``make run`` finds them and reuses them).

The world is seed 004's recommender: the control ranker's users click 7% of the time and the
challenger (the better model, by its holdout AUC) lifts that to 11%.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from splitlab.simulation.driver import Endpoints
from splitlab.simulation.models import BUNDLE_SEED, DEMO_MODELS, demo_models
from splitlab.simulation.world import Behaviour

DEMO_KEY = "demo"
CONTROL_MODEL = DEMO_MODELS[0].ref
CHALLENGER_MODEL = DEMO_MODELS[1].ref

PRESETS: dict[str, dict[str, Behaviour]] = {
    "recommender": {CHALLENGER_MODEL: Behaviour(click=11 / 7)},
    "aa": {},
}
"""Named worlds: how each demo model's users behave relative to control's (seed 004's
recommender: 7% to 11% click-through)."""

METRICS: tuple[dict[str, Any], ...] = (
    {
        "name": "clicks",
        "description": "Clicks per user.",
        "source": "outcome",
        "outcome_type": "click",
        "aggregation": "count",
        "covariates": ["clicks_30d", "sessions_30d", "tenure_days"],
    },
    {
        "name": "impressions",
        "description": "Model-served requests per user.",
        "source": "prediction_latency",
        "aggregation": "count",
        "pre_period_days": 0,
    },
    {
        "name": "ctr",
        "description": "Click-through rate: clicks over impressions (seed 004).",
        "numerator": "clicks",
        "denominator": "impressions",
    },
    {
        "name": "conversion",
        "description": "Share of users who bought.",
        "source": "outcome",
        "outcome_type": "conversion",
        "aggregation": "any",
        "covariates": ["clicks_30d", "sessions_30d"],
    },
    {
        "name": "revenue",
        "description": "Revenue per user.",
        "source": "outcome",
        "outcome_type": "revenue",
        "aggregation": "sum",
        "covariates": ["spend_30d", "clicks_30d"],
    },
    {
        "name": "model_latency_ms",
        "description": "Mean model latency per user (guardrail).",
        "source": "prediction_latency",
        "aggregation": "mean",
        "direction": "lower_is_better",
        "pre_period_days": 0,
    },
    {
        "name": "model_errors",
        "description": "Model errors per user (guardrail).",
        "source": "prediction_error",
        "aggregation": "count",
        "direction": "lower_is_better",
        "pre_period_days": 0,
    },
)
"""The demo's metric definitions, parts of a ratio before the ratio (the analyzer checks)."""


def experiment_body(
    key: str = DEMO_KEY, control: str = CONTROL_MODEL, treatment: str = CHALLENGER_MODEL
) -> dict[str, Any]:
    return {
        "key": key,
        "name": "Demo: ranker 2 against ranker 1",
        "hypothesis": "The ranker with history features raises click-through from 7% to 11%.",
        "owner": "demo-team",
        "variants": [
            {"key": "control", "weight": 0.5, "model": control},
            {"key": "treatment", "weight": 0.5, "model": treatment},
        ],
        "metrics": {
            "primary": "clicks",
            "secondary": ["ctr", "conversion", "revenue"],
            "guardrails": [
                {"metric": "model_latency_ms", "margin": 1.0},
                {"metric": "model_errors", "margin": 0.5},
            ],
        },
        # The simulated users' attributes, recorded on exposures for `--segment country`.
        "segment_attributes": ["country", "device", "tenure_days"],
        "alpha": 0.05,
        "power": 0.9,
        "mde": 0.1,
        "auto_stop": False,
    }


@dataclass(frozen=True)
class Setup:
    """What an ``ensure_*`` function found (``existing``) and created, and the experiment's
    status (empty where it set up no experiment)."""

    created: tuple[str, ...]
    existing: tuple[str, ...]
    status: str


def ensure_demo(
    endpoints: Endpoints, store: Path, key: str = DEMO_KEY, seed: int = BUNDLE_SEED
) -> Setup:
    """Models, metrics and the running experiment ``key``, each created only if missing."""
    created: list[str] = []
    existing: list[str] = []
    with httpx.Client(timeout=30.0, headers=endpoints.admin_headers()) as client:
        for found in (
            ensure_models(client, endpoints, store, seed),
            ensure_metrics(client, endpoints),
            ensure_experiment(client, endpoints, experiment_body(key)),
        ):
            created += found.created
            existing += found.existing
    return Setup(tuple(created), tuple(existing), found.status)


def ensure_models(
    client: httpx.Client, endpoints: Endpoints, store: Path, seed: int = BUNDLE_SEED
) -> Setup:
    """The demo models registered in the router when missing (written into ``store``: the
    bundled files for the bundle's seed, else trained on ``World(seed)``)."""
    missing = [
        m
        for m in DEMO_MODELS
        if client.get(f"{endpoints.router_url}/models/{m.name}/{m.version}").status_code == 404
    ]
    created: list[str] = []
    if missing:
        for trained in demo_models(store, seed):
            if trained.model in missing:
                _ok(client.post(f"{endpoints.router_url}/models", json=trained.registration()))
                created.append(f"model {trained.model.ref} (AUC {trained.auc:.3f})")
    existing = [f"model {m.ref}" for m in DEMO_MODELS if m not in missing]
    return Setup(tuple(created), tuple(existing), "")


def ensure_metrics(client: httpx.Client, endpoints: Endpoints) -> Setup:
    """The demo's metric definitions in the analyzer."""
    created: list[str] = []
    existing: list[str] = []
    for metric in METRICS:
        url = f"{endpoints.analyzer_url}/metric-definitions/{metric['name']}"
        if client.get(url).status_code == 404:
            _ok(client.post(f"{endpoints.analyzer_url}/metrics", json=metric))
            created.append(f"metric {metric['name']}")
        else:
            existing.append(f"metric {metric['name']}")
    return Setup(tuple(created), tuple(existing), "")


def ensure_experiment(client: httpx.Client, endpoints: Endpoints, body: dict[str, Any]) -> Setup:
    """Experiment ``body['key']`` created if missing and started if still a draft."""
    key = body["key"]
    response = client.get(f"{endpoints.assignment_url}/experiments/{key}")
    found = response.status_code != 404
    if found:
        status = str(_ok(response).json()["status"])
    else:
        _ok(client.post(f"{endpoints.assignment_url}/experiments", json=body))
        status = "draft"
    if status == "draft":
        _ok(client.post(f"{endpoints.assignment_url}/experiments/{key}/start"))
        status = "running"
    named = (f"experiment {key}",)
    return Setup(() if found else named, named if found else (), status)


def _ok(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:300]
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {message}"
        )
    return response
