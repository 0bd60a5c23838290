"""The results body (``GET /experiments/{key}/results``, ``POST .../refresh``) as a schema family:
``splitlab.analyze``'s shape (:class:`splitlab.contracts.analysis.AnalysisBody`) plus the
analyzer's additions, each under its own key."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from splitlab.contracts.analysis import AnalysisBody, Number, Open
from splitlab.core.stats.adjustment import Method


class ExperimentBody(Open):
    key: str
    status: str
    primary: str
    auto_stop: bool
    alpha: float
    mde: float | None


class SampleBody(Open):
    units: dict[str, int] = Field(description="Exposed units per analyzed variant.")
    total_units: int
    planned_sample_size: int | None
    first_exposure_at: str | None
    last_exposure_at: str | None
    power_so_far: dict[str, Number] = Field(
        description="Per treatment: power of the current sample for the primary metric's MDE."
    )
    power_at_planned: dict[str, Number] = Field(
        description="Per treatment: power the planned sample will have, at the spread so far."
    )
    units_per_day: Number
    days_to_planned: Number


class ShadowBody(Open):
    units: int
    means: dict[str, Number] = Field(description="Per metric, its mean over the shadow's units.")


class MethodsBody(Open):
    requested: Method
    used: dict[str, Method]
    not_applied: dict[str, str] = Field(
        description="Metrics the requested method could not apply to, with the reason."
    )


class ExcludedValuesBody(Open):
    limit: float = Field(description="Stored values beyond this absolute value are left out.")
    outcomes: int
    unit_features: int


class FallbackShareBody(Open):
    predictions: int
    fallbacks: int
    share: Number


class FallbackBody(Open):
    variants: dict[str, FallbackShareBody]
    threshold: float
    mostly_fell_back: list[str]


class MonitoringBody(Open):
    """The always-valid view of one comparison."""

    always_valid_p_value: Number
    cs_lower: Number
    cs_upper: Number


class GuardrailBody(Open):
    """The one-sided always-valid test of harm beyond the guardrail's margin."""

    metric: str
    variant: str
    margin: float
    harm: Number
    harm_lower: Number
    always_valid_p_value: Number
    violated: bool
    status: str


class FlagsBody(Open):
    srm: bool
    guardrail_violated: list[str]
    treatment_fallback: list[str]
    excluded_values: int


class CupacModelBody(Open):
    model_id: int
    kind: str
    family: str
    r2: Number
    trained_at: str
    age_seconds: float
    schedule_seconds: float
    stale: bool


class TimingsBody(Open):
    sql_s: float
    total_s: float
    per_unit: Literal["rollups", "events"]
    rollup_catch_up_s: float | None = None
    rollup_catch_up_units: int | None = None


class ResultsBody(AnalysisBody):
    """An experiment's results: the analysis, and what the analyzer adds to it."""

    experiment: ExperimentBody
    sample: SampleBody
    shadows: dict[str, ShadowBody] = Field(description="Variants of weight 0, reported apart.")
    methods: MethodsBody
    excluded_values: ExcludedValuesBody
    fallback: FallbackBody
    monitoring: dict[str, dict[str, MonitoringBody]] = Field(
        description="Per metric and treatment: always-valid p-value and confidence sequence."
    )
    guardrails: list[GuardrailBody]
    flags: FlagsBody
    cupac_models: dict[str, CupacModelBody] = Field(
        description="Per metric: the trainer's model version whose predictions are in use."
    )
    computed_at: str
    timings: TimingsBody
