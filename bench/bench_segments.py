"""Results by segment against the plain results, in the same run (issue 20's acceptance).

The experiment of ``bench_analyzer``'s results benchmark (1,000,000 units, 3 variants, 5
metrics with 14-day pre-periods, loaded with COPY, first exposures recorded, rollups built),
with each unit's first-exposure attributes set to one of 5 countries and a tenure in days.
Timed, alternately, best of 3 each: one uncached ``ResultsService.compute`` (method ``auto``:
one SQL aggregation, the engine at both horizons) without a segment, by ``country`` (5
segments) and by ``tenure_days:30,180,365`` (4 buckets). Target: segmented <= 2x plain.

The attributes are written into ``experiment_units`` with one UPDATE after the load (what
ingestion would have stored from the exposures' ``attributes``), so the load stays the COPY of
``bench_analyzer``; the rollup build copies them into ``unit_rollups``. Everything lives
in the schema ``bench_segments``, dropped at the end.
``BENCH_SEGMENTS_UNITS`` makes it smaller while developing.
"""

from __future__ import annotations

import os
import time

import bench_analyzer
import scratch
from harness import BenchResult
from sqlalchemy import Engine, text

from splitlab.core.analysis.segments import parse_segment
from splitlab.platform.settings import load_settings

SCHEMA = "bench_segments"
UNITS = int(os.environ.get("BENCH_SEGMENTS_UNITS", 1_000_000))
COUNTRIES = ("US", "DE", "FR", "BR", "IN")
"""Shares 40%, 20%, 20%, 10%, 10% (by a hash of the unit id)."""


def set_attributes(engine: Engine) -> None:
    """Each unit's first-exposure attributes: a country (5, unequal shares) and a tenure."""
    with engine.begin() as c:
        c.execute(text("SET LOCAL work_mem = '256MB'"))
        c.execute(
            text(
                "UPDATE experiment_units SET attributes = jsonb_build_object("
                "'country', (CAST(:countries AS text[]))"
                "[1 + (ARRAY[0, 0, 0, 0, 1, 1, 2, 2, 3, 4])[1 + abs(hashtext(unit_id)) % 10]], "
                "'tenure_days', abs(hashtext(unit_id || 't')) % 730, 'device', 'mobile')"
            ),
            {"countries": list(COUNTRIES)},
        )
        c.execute(text("ANALYZE experiment_units"))


def run() -> list[BenchResult]:
    settings = load_settings()
    engine = scratch.fresh_schema(settings, SCHEMA, pool_size=4)
    try:
        start = time.perf_counter()
        bench_analyzer.load_experiment(engine, UNITS)
        bench_analyzer.record_first_exposures(engine)
        set_attributes(engine)
        load_s = time.perf_counter() - start
        bench_analyzer.define_experiment(engine)
        service = bench_analyzer.results_service(engine)
        service.build_rollups("bench")
        cases = {"plain": None, "country": "country", "tenure": "tenure_days:30,180,365"}
        timings: dict[str, list[float]] = {name: [] for name in cases}
        sql: dict[str, list[float]] = {name: [] for name in cases}
        bodies = {}
        service.compute("bench", "auto")  # warm the caches of Postgres once
        for _ in range(3):
            for name, spec in cases.items():
                segment = None if spec is None else parse_segment(spec)
                start = time.perf_counter()
                computed = service.compute("bench", "auto", segment=segment)
                timings[name].append(time.perf_counter() - start)
                sql[name].append(computed.body["timings"]["sql_s"])
                bodies[name] = computed.body
    finally:
        engine.dispose()
        scratch.drop_schema(settings, SCHEMA)
    best = {name: min(t) for name, t in timings.items()}
    ratio = best["country"] / best["plain"]
    segments = bodies["country"]["segments"]["segments"]
    return [
        BenchResult(
            benchmark="analyzer.segmented_results_1m_units_5_segments",
            figures={
                "plain_s": round(best["plain"], 3),
                "country_s": round(best["country"], 3),
                "segmented_vs_plain_ratio": round(ratio, 3),
                "tenure_s": round(best["tenure"], 3),
                "tenure_vs_plain_ratio": round(best["tenure"] / best["plain"], 3),
                "plain_sql_s": round(min(sql["plain"]), 3),
                "country_sql_s": round(min(sql["country"]), 3),
                "load_s": round(load_s, 1),
            },
            target="country_s <= 2 * plain_s",
            met=ratio <= 2.0,
            notes="uncached ResultsService.compute(method=auto) from the stored rollups, best of "
            "3, the three cases alternating: plain (no segment), by country (5 segments: one "
            "aggregation grouped by variant, period, segment and missing pattern, the "
            "attributes read from the stored rollups, then each segment analysed at both horizons "
            "with the overall method per metric, Holm across segments, Cochran's Q), by tenure "
            "(4 buckets of a numeric attribute, width_bucket in SQL)",
            context={
                "units": UNITS,
                "variants": 3,
                "metrics": 5,
                "segments": len(segments),
                "segment_units": {s: sum(v["units"].values()) for s, v in segments.items()},
                "per_unit": bodies["country"]["timings"]["per_unit"],
            },
        )
    ]
