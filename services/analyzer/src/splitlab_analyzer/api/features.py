"""Pre-exposure covariates: ``POST /unit-features`` (admin) loads values (upsert)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from splitlab_analyzer.deps import AdminOnly, Features
from splitlab_analyzer.repository import FeatureRow
from splitlab_analyzer.schemas import FeatureLoad, FeatureLoadResult

router = APIRouter(tags=["features"], dependencies=[AdminOnly])


FEATURE_BODY_BYTES = 16 * 1024 * 1024
"""The body limit of this route alone: 20,000 values whose every field has its longest allowed
length take about 10 MB of compact JSON; the service-wide ``SPLITLAB_MAX_BODY_BYTES`` (1 MiB)
would stop a call near 9,000 typical values."""


@router.post("/unit-features", max_body_size=FEATURE_BODY_BYTES)
async def load_features(body: FeatureLoad, features: Features) -> FeatureLoadResult:
    """Up to 20,000 values per call (a body of up to 16 MiB); the CLI (`splitlab features
    load`) sends 5,000 at a time."""
    rows = [FeatureRow(f.unit_id, f.name, f.observed_at, f.value) for f in body.features]
    return FeatureLoadResult(loaded=await run_in_threadpool(features.load, rows))
