"""Pre-exposure covariates: ``POST /unit-features`` (admin) loads values (upsert)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from splitlab_analyzer.deps import AdminOnly, Features
from splitlab_analyzer.repositories import FeatureRow
from splitlab_analyzer.schemas import FeatureLoad, FeatureLoadResult

router = APIRouter(tags=["features"], dependencies=[AdminOnly])


@router.post("/unit-features")
async def load_features(body: FeatureLoad, features: Features) -> FeatureLoadResult:
    """Up to 20,000 values per call; the CLI (`splitlab features load`) splits files."""
    rows = [FeatureRow(f.unit_id, f.name, f.observed_at, f.value) for f in body.features]
    return FeatureLoadResult(loaded=await run_in_threadpool(features.load, rows))
