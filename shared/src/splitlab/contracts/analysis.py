"""The JSON shape of an analysis (``AnalysisResult.to_dict()``) as pydantic schemas.

``splitlab analyze --json`` prints this shape and the analyzer's results API extends it
(``splitlab_analyzer.results.schemas.ResultsBody``), so the OpenAPI document describes every
field. Non-finite numbers are ``null``. The models allow extra keys: an analysis may add
fields (``mann_whitney_p_value``, ``bootstrap_ci_lower``...) and a reader of an older body
keeps working; a route returns them with ``response_model_exclude_unset`` so the body holds
exactly the keys the analysis produced.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from splitlab.core.stats.adjustment import Method, MetricKind
from splitlab.core.stats.comparison import Alternative
from splitlab.core.stats.decision import Action
from splitlab.core.stats.metric_tests import MetricTest
from splitlab.core.stats.multiple import Correction

__all__ = [
    "AnalysisBody",
    "CandidateBody",
    "ComparisonBody",
    "CupacBody",
    "DecisionBody",
    "MetricBody",
    "MetricTestBody",
    "PeriodBody",
    "RowsBody",
    "SrmBody",
    "SrmSequentialBody",
]

Number = float | None
"""A number, or null when it is not finite (NaN, an infinite one-sided bound)."""


class Open(BaseModel):
    """A body part that may carry more keys than it documents."""

    model_config = ConfigDict(extra="allow")


class MetricTestBody(Open):
    """The metric's named test of one comparison (``splitlab.core.stats.metric_tests``)."""

    test: MetricTest
    statistic: Number = Field(
        description="t (welch), z, chi-square, U of the treatment (mann_whitney), or the "
        "observed quantile difference (bootstraps)."
    )
    p_value: Number
    effect: Number = Field(
        description="Difference in means/proportions (welch, z, chi2), Hodges-Lehmann shift "
        "(mann_whitney), difference of the quantile (bootstraps)."
    )
    ci_lower: Number
    ci_upper: Number
    prob_superiority: Number = Field(
        description="P(treatment > control) + P(tie)/2 (mann_whitney; else null)."
    )
    quantile: float | None = Field(description="The quantile compared (bootstraps; else null).")
    n_resamples: int = Field(description="Bootstrap resamples (0 for the other tests).")
    status: str


class ComparisonBody(Open):
    """One treatment against control on one metric."""

    n_control: int
    n_treatment: int
    mean_control: Number
    mean_treatment: Number
    effect: Number = Field(description="mean_treatment - mean_control (adjusted by the method).")
    se: Number
    ci_lower: Number
    ci_upper: Number
    rel_effect: Number = Field(description="effect / mean_control.")
    rel_ci_lower: Number
    rel_ci_upper: Number
    p_value: Number
    df: Number
    variance_reduction: Number
    status: str = Field(description="ok, or why the comparison is not estimable.")
    p_value_adjusted: Number = Field(description="After the multiple-comparison correction.")
    chance_to_beat_control: Number
    expected_loss: Number
    cohens_d: Number = Field(
        default=None,
        description="Difference in (unadjusted) means over the pooled SD; null for ratios.",
    )
    test: MetricTestBody | None = Field(default=None, description="The metric's named test.")


class CandidateBody(Open):
    """One method's estimate of every treatment's effect (what ``auto`` chose among)."""

    variance_reduction: Number
    detail: str
    effect: dict[str, Number]
    se: dict[str, Number]


class CupacBody(Open):
    model: str
    oof_r2: dict[str, Number]
    folds: int
    elapsed_s: float
    notes: list[str]


class BalanceBody(Open):
    """CUNOPAC: one in-experiment covariate's balance test between arms (Welch t)."""

    covariate: str
    used: bool = Field(description="False: the treatment moved it, so it was refused.")
    balance_alpha: float
    means: dict[str, Number] = Field(description="Per arm, control first.")
    differences: dict[str, Number] = Field(description="Per treatment: its mean minus control's.")
    p_values: dict[str, Number] = Field(description="Per treatment.")
    p_value: Number = Field(description="The smallest over treatments (what decided).")
    message: str


class ClusterBody(Open):
    """Rows summed per randomisation unit (``cluster_col``): each metric is a per-row ratio."""

    column: str
    clusters: int
    rows: int


class MetricBody(Open):
    kind: MetricKind
    method: Method = Field(description="The method used (never auto).")
    requested_method: Method
    reason: str
    detail: str
    variance_reduction: Number
    correction: Correction
    dropped_rows: int
    imputed_covariates: int
    lower_is_better: bool
    comparisons: dict[str, ComparisonBody] = Field(description="Per treatment.")
    candidates: dict[str, CandidateBody] = Field(description="Per method tried.")
    cupac: CupacBody | None
    test: MetricTest = Field(default="welch", description="The metric's named test.")
    quantile: float | None = Field(
        default=None, description="The quantile a bootstrap test compares (else null)."
    )
    in_experiment_covariates: list[BalanceBody] | None = Field(
        default=None, description="CUNOPAC balance checks (only with in-experiment covariates)."
    )


class RowsBody(Open):
    total: int
    missing_variant: int


class SrmSequentialBody(Open):
    """The always-valid SRM test (Dirichlet-multinomial mixture SPRT) of the same counts."""

    p_value: Number = Field(description="min(1, 1/Bayes factor): valid at every look.")
    log_bayes_factor: Number
    concentrations: list[float] = Field(
        description="Dirichlet concentrations the alternative mixes with equal weights."
    )
    threshold: float
    status: str = Field(description="ok, mismatch or insufficient_data.")


class SrmBody(Open):
    """The sample-ratio-mismatch chi-square test of the units per variant."""

    p_value: Number
    statistic: Number
    observed: dict[str, int]
    expected_weights: dict[str, float]
    status: str = Field(description="ok, mismatch or insufficient_data.")
    threshold: float
    expected: dict[str, Number] | None = Field(
        default=None, description="Expected units per variant (only with allocation periods)."
    )
    sequential: SrmSequentialBody | None = Field(
        default=None, description="The always-valid test; the SRM flag and alert use it."
    )


class DecisionBody(Open):
    action: Action
    reasons: list[str]


class PeriodBody(Open):
    """One allocation period: its split, its new units and their own SRM check."""

    period: int | str
    start: str | None
    weights: dict[str, float]
    units: dict[str, int]
    expected: dict[str, Number]
    srm_p_value: Number
    srm_status: str
    stratum: int


class AnalysisBody(Open):
    """``splitlab.analyze``'s result (``AnalysisResult.to_dict()``)."""

    control: str
    variants: list[str] = Field(description="Control first.")
    alpha: float
    alternative: Alternative
    sequential: bool = Field(description="True: always-valid p-values and confidence sequences.")
    rows: RowsBody
    srm: SrmBody
    metrics: dict[str, MetricBody] = Field(description="Per metric, the primary first.")
    decisions: dict[str, DecisionBody] = Field(description="Per treatment.")
    periods: list[PeriodBody] | None = Field(
        default=None, description="Allocation periods (only when there are several)."
    )
    strata: int | None = Field(default=None, description="Distinct splits among the periods.")
    cluster: ClusterBody | None = Field(
        default=None, description="Set when rows were summed per cluster (``cluster_col``)."
    )
    segments: SegmentsBody | None = Field(
        default=None, description="Results per segment (only when a segment was asked for)."
    )


from splitlab.contracts.segments import SegmentsBody  # noqa: E402  (it builds on the above)

AnalysisBody.model_rebuild()
