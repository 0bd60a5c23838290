"""What the results query computes per metric: its columns and covariates (plain data)."""

from __future__ import annotations

from dataclasses import dataclass

from splitlab_analyzer.definitions import MetricDef


@dataclass(frozen=True)
class Covariate:
    column: str
    """Column name in the per-unit CTEs (``x0``...)."""
    name: str
    """Name the engine sees (``<metric>_pre``, a feature name, ``cupac_prediction``)."""
    imputable: bool
    """True when a unit may lack a value (then imputed with the mean)."""
    pre_of: int | None = None
    """For a pre-period covariate: the base metric whose pre-period events decide inclusion."""
    in_experiment: bool = False
    """Observed during the experiment (CUNOPAC): balance-checked before use."""


@dataclass(frozen=True)
class PlannedMetric:
    definition: MetricDef
    y: str
    """Column of the metric value (plain) or the numerator (ratio)."""
    denominator: str | None = None
    """Column of the denominator (a ratio metric, or an ``event_mean``'s event count)."""
    covariates: tuple[Covariate, ...] = ()
    parts: tuple[str, str] | None = None
    """The names of the numerator and denominator columns the engine sees (ratio kinds)."""

    @property
    def columns(self) -> tuple[str, ...]:
        head = (self.y,) if self.denominator is None else (self.y, self.denominator)
        return (*head, *(c.column for c in self.covariates))
