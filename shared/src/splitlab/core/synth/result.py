"""The result of a synthetic control analysis and its JSON shape."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from splitlab.core.synth.inference import InTimePlacebo, PlaceboRun
from splitlab.core.synth.panel import format_time


@dataclass(frozen=True)
class PeriodEffect:
    """One period: the treated outcome, its counterfactual and their difference."""

    time: Any
    actual: float
    counterfactual: float
    effect: float
    post: bool


@dataclass(frozen=True)
class SyntheticControlResult:
    """What ``splitlab.synthetic_control`` estimates.

    ``att`` is the average effect on the treated over the post-period (actual minus
    counterfactual), ``rel_att`` the same relative to the mean post-period counterfactual,
    ``att_ci_lower``/``att_ci_upper`` its ``1 - alpha`` interval and ``p_value`` the in-space
    placebo p-value (all NaN when ``placebo=False``). ``pre_rmspe`` and ``post_rmspe`` are the
    root mean squared gaps before and after the intervention.
    """

    method: str
    weights: dict[str, float]
    att: float
    att_ci_lower: float
    att_ci_upper: float
    rel_att: float
    p_value: float
    pre_rmspe: float
    post_rmspe: float
    effects: list[PeriodEffect]
    warnings: list[str]
    alpha: float
    treated: list[str]
    intervention_time: Any
    interval_level: float = math.nan
    """The level the ATT interval really has: ``1 - alpha``, or less when there are too few
    placebos for it (then the interval is the placebo range); NaN without an interval."""
    selection: str | None = None
    """Why ``auto`` chose the method (None when the method was given)."""
    placebos: list[PlaceboRun] = field(default_factory=list)
    in_time_placebo: InTimePlacebo | None = None
    band_lower: list[float] | None = None
    """Per-period placebo band around the counterfactual (effect units), for plots."""
    band_upper: list[float] | None = None

    @property
    def interval_label(self) -> str:
        """How tables name the interval: its real level ("83.3% interval"), not the nominal."""
        if not math.isfinite(self.interval_level):
            return "interval"
        level = self.interval_level
        return (
            f"{level:.0%} interval"
            if abs(level * 100 - round(level * 100)) < 1e-9
            else (f"{level:.1%} interval")
        )

    @property
    def n_pre(self) -> int:
        return sum(1 for e in self.effects if not e.post)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape shared by the API, the CLI and reports (NaN becomes ``None``)."""
        return {
            "method": self.method,
            "weights": {unit: _num(w) for unit, w in self.weights.items()},
            "att": _num(self.att),
            "att_ci_lower": _num(self.att_ci_lower),
            "att_ci_upper": _num(self.att_ci_upper),
            "interval_level": _num(self.interval_level),
            "rel_att": _num(self.rel_att),
            "p_value": _num(self.p_value),
            "pre_rmspe": _num(self.pre_rmspe),
            "post_rmspe": _num(self.post_rmspe),
            "effects": [
                {
                    "time": format_time(e.time),
                    "actual": _num(e.actual),
                    "counterfactual": _num(e.counterfactual),
                    "effect": _num(e.effect),
                }
                for e in self.effects
            ],
            "warnings": list(self.warnings),
        }


def _num(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
