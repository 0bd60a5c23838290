"""Result types of :func:`splitlab.analyze` and their JSON shape (``to_dict``).

The shape is a public contract (the analyzer's results API returns it)::

    {"srm": {"p_value", "observed", "expected_weights", ...},
     "metrics": {NAME: {"method", "variance_reduction", ...,
                        "comparisons": {VARIANT: {"n_control", "n_treatment", "mean_control",
                                                  "mean_treatment", "effect", "ci_lower",
                                                  "ci_upper", "rel_effect", "rel_ci_lower",
                                                  "rel_ci_upper", "p_value", ...}}}},
     "decisions": {VARIANT: {"action", "reasons"}}, ...}

Non-finite numbers (NaN, infinite one-sided bounds) become ``null`` so the output is strict JSON.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from splitlab.core.stats.adjustment import Candidate
from splitlab.core.stats.balance import BalanceCheck
from splitlab.core.stats.comparison import Comparison
from splitlab.core.stats.cupac import CupacFit
from splitlab.core.stats.decision import Decision
from splitlab.core.stats.metric_tests import MetricTestResult
from splitlab.core.stats.sequential_srm import SequentialSRMResult
from splitlab.core.stats.srm import SRMResult

if TYPE_CHECKING:
    from splitlab.core.analysis.monitoring import GuardrailStatus
    from splitlab.core.analysis.segments import SegmentsResult

__all__ = [
    "AnalysisResult",
    "ClusterSummary",
    "ComparisonResult",
    "MetricResult",
    "PeriodSummary",
    "RowCounts",
    "json_number",
    "test_dict",
]


def json_number(value: float) -> float | None:
    """A float for JSON: ``None`` for NaN and infinities."""
    return float(value) if math.isfinite(value) else None


def _comparison_dict(c: Comparison) -> dict[str, Any]:
    return {
        "n_control": c.n_control,
        "n_treatment": c.n_treatment,
        "mean_control": json_number(c.mean_control),
        "mean_treatment": json_number(c.mean_treatment),
        "effect": json_number(c.effect),
        "se": json_number(c.se),
        "ci_lower": json_number(c.ci_lower),
        "ci_upper": json_number(c.ci_upper),
        "rel_effect": json_number(c.rel_effect),
        "rel_ci_lower": json_number(c.rel_ci_lower),
        "rel_ci_upper": json_number(c.rel_ci_upper),
        "p_value": json_number(c.p_value),
        "df": json_number(c.df),
        "variance_reduction": json_number(c.variance_reduction),
        "status": c.status,
    }


def test_dict(t: MetricTestResult) -> dict[str, Any]:
    """A comparison's ``test`` in JSON."""
    return {
        "test": t.test,
        "statistic": json_number(t.statistic),
        "p_value": json_number(t.p_value),
        "effect": json_number(t.effect),
        "ci_lower": json_number(t.ci_lower),
        "ci_upper": json_number(t.ci_upper),
        "prob_superiority": json_number(t.prob_superiority),
        "quantile": t.quantile,
        "n_resamples": t.n_resamples,
        "status": t.status,
    }


@dataclass(frozen=True)
class RowCounts:
    total: int
    missing_variant: int


@dataclass(frozen=True)
class ComparisonResult:
    """One treatment against control on one metric, with the extras of the analysis."""

    comparison: Comparison
    p_value_adjusted: float
    chance_to_beat_control: float
    expected_loss: float
    extra: dict[str, float] = field(default_factory=dict)
    cohens_d: float = math.nan
    """The difference in (unadjusted) means over the pooled standard deviation (NaN for a
    ratio metric)."""
    test: MetricTestResult | None = None
    """The metric's named test (:mod:`splitlab.core.analysis.metric_tests`)."""

    def to_dict(self) -> dict[str, Any]:
        out = _comparison_dict(self.comparison)
        out["p_value_adjusted"] = json_number(self.p_value_adjusted)
        out["chance_to_beat_control"] = json_number(self.chance_to_beat_control)
        out["expected_loss"] = json_number(self.expected_loss)
        out["cohens_d"] = json_number(self.cohens_d)
        if self.test is not None:
            out["test"] = test_dict(self.test)
        out.update({k: json_number(v) for k, v in self.extra.items()})
        return out


@dataclass(frozen=True)
class MetricResult:
    name: str
    kind: str
    method: str
    requested_method: str
    reason: str
    detail: str
    variance_reduction: float
    comparisons: dict[str, ComparisonResult]
    candidates: dict[str, Candidate]
    correction: str
    dropped_rows: int
    imputed_covariates: int
    cupac: CupacFit | None
    lower_is_better: bool = False
    test: str = "welch"
    """The metric's named test (``tests=`` of :func:`splitlab.analyze`)."""
    quantile: float | None = None
    """The quantile a bootstrap test compares (None for the other tests)."""
    balance: list[BalanceCheck] = field(default_factory=list)
    """The balance check of each in-experiment covariate (CUNOPAC); refused ones were not
    used (JSON ``in_experiment_covariates``, present only when there are any)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "test": self.test,
            "quantile": self.quantile,
            "method": self.method,
            "requested_method": self.requested_method,
            "reason": self.reason,
            "detail": self.detail,
            "variance_reduction": json_number(self.variance_reduction),
            "correction": self.correction,
            "dropped_rows": self.dropped_rows,
            "imputed_covariates": self.imputed_covariates,
            "lower_is_better": self.lower_is_better,
            "comparisons": {v: c.to_dict() for v, c in self.comparisons.items()},
            "candidates": {
                m: {
                    "variance_reduction": json_number(c.variance_reduction),
                    "detail": c.detail,
                    "effect": {v: json_number(x.effect) for v, x in c.comparisons.items()},
                    "se": {v: json_number(x.se) for v, x in c.comparisons.items()},
                }
                for m, c in self.candidates.items()
            },
        }
        out["cupac"] = None
        if self.cupac is not None:
            out["cupac"] = {
                "model": self.cupac.model,
                "oof_r2": {k: json_number(v) for k, v in self.cupac.r2.items()},
                "folds": self.cupac.folds,
                "elapsed_s": round(self.cupac.elapsed_s, 3),
                "notes": list(self.cupac.notes),
            }
        if self.balance:
            out["in_experiment_covariates"] = [b.to_dict() for b in self.balance]
        return out


@dataclass(frozen=True)
class PeriodSummary:
    """One allocation period: its split, its new units and their own SRM check."""

    period: Hashable
    start: str | None
    """When the period began (ISO 8601), when known."""
    weights: dict[str, float]
    """The split in force (shares of 1, variant order)."""
    srm: SRMResult
    """The period's units (``observed``) against its split."""
    stratum: int
    """Index of the stratum (periods sharing one split) its units are estimated in."""
    units: dict[str, int] = field(default_factory=dict)
    """New units per variant (every variant, also those without weight in the period)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "start": self.start,
            "weights": dict(self.weights),
            "units": dict(self.units or self.srm.observed),
            "expected": {k: json_number(self.srm.expected.get(k, 0.0)) for k in self.weights},
            "srm_p_value": json_number(self.srm.p_value),
            "srm_status": self.srm.status,
            "stratum": self.stratum,
        }


@dataclass(frozen=True)
class ClusterSummary:
    """Rows analysed per cluster: each metric became a ratio of per-cluster sums."""

    column: str
    """The cluster (randomisation unit) column, e.g. ``user_id``."""
    clusters: int
    """Clusters with a variant (the units of SRM and of every test)."""
    rows: int
    """Rows with a variant."""

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "clusters": self.clusters, "rows": self.rows}


@dataclass(frozen=True)
class AnalysisResult:
    """Everything :func:`splitlab.analyze` found; ``to_dict()`` for JSON."""

    control: str
    variants: list[str]
    alpha: float
    alternative: str
    sequential: bool
    srm: SRMResult
    metrics: dict[str, MetricResult]
    decisions: dict[str, Decision]
    rows: RowCounts
    periods: list[PeriodSummary] = field(default_factory=list)
    """Allocation periods, when the analysis was given them (else empty)."""
    guardrail_tests: list[GuardrailStatus] = field(default_factory=list)
    """The one-sided always-valid test of each guardrail and treatment (``analyze`` with
    ``guardrails``; :mod:`splitlab.core.analysis.monitoring`)."""
    mde: float | None = None
    """The relative minimum detectable effect of the primary metric, when given."""
    power_so_far: dict[str, float | None] | None = None
    """Per treatment: the power of the current sample to detect ``mde`` on the primary
    metric (None without ``mde``)."""
    cluster: ClusterSummary | None = None
    """Set when rows were aggregated to their randomisation unit (``cluster_col``)."""
    srm_sequential: SequentialSRMResult | None = None
    """The always-valid SRM test of the same counts (:mod:`splitlab.core.stats.sequential_srm`):
    what the sequential horizon's decisions, the analyzer's flag and the SRM alert use."""
    segments: SegmentsResult | None = None
    """Results per segment of a unit attribute (``analyze`` with ``segment``;
    :mod:`splitlab.core.analysis.segments`)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "control": self.control,
            "variants": list(self.variants),
            "alpha": self.alpha,
            "alternative": self.alternative,
            "sequential": self.sequential,
            "rows": {"total": self.rows.total, "missing_variant": self.rows.missing_variant},
            "srm": {
                "p_value": json_number(self.srm.p_value),
                "statistic": json_number(self.srm.statistic),
                "observed": dict(self.srm.observed),
                "expected_weights": dict(self.srm.expected_weights),
                "status": self.srm.status,
                "threshold": self.srm.threshold,
            },
            "metrics": {name: m.to_dict() for name, m in self.metrics.items()},
            "decisions": {
                v: {"action": d.action, "reasons": list(d.reasons)}
                for v, d in self.decisions.items()
            },
        }
        if self.srm_sequential is not None:
            out["srm"]["sequential"] = self.srm_sequential.to_dict()
        if self.periods:
            out["srm"]["expected"] = {k: json_number(v) for k, v in self.srm.expected.items()}
            out["periods"] = [p.to_dict() for p in self.periods]
            out["strata"] = len({p.stratum for p in self.periods})
        if self.guardrail_tests:
            out["guardrails"] = [g.to_dict() for g in self.guardrail_tests]
        if self.power_so_far is not None:
            out["mde"] = self.mde
            out["power_so_far"] = dict(self.power_so_far)
        if self.cluster is not None:
            out["cluster"] = self.cluster.to_dict()
        if self.segments is not None:
            out["segments"] = self.segments.to_dict()
        return out
