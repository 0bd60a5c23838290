"""CUNOPAC's gate: is an in-experiment covariate balanced between arms?

CUNOPAC adjusts a metric with covariates measured *during* the experiment (a device attribute
observed after exposure, traffic from another source) that the treatment cannot move. Such a
covariate is valid only if the treatment really left it alone; one the treatment moved carries
part of the effect, and adjusting for it biases the estimate by ``theta * (its shift)``.

Before use each covariate's mean is compared between control and every treatment with Welch's
t test (from sufficient statistics). A covariate is refused when any treatment's p-value is
below ``balance_alpha`` (:data:`BALANCE_ALPHA`, 0.01 by default). A refusal falls back to the
other covariates, and it happens exactly when a chance imbalance makes the analysis without
the covariate lean the same way: with a strongly predictive valid covariate, refusals at 0.05
raised the A/A false-positive rate to 0.062 and lowered coverage to 0.933
(``studies/cunopac.py``), at 0.01 the rate was 0.046 and the coverage 0.945, while the gate
still refused a 0.2 SD shift in 97.6% of the datasets (docs/statistics.md, "CUNOPAC"). The
evidence (means per arm, difference, p-value) is kept for the result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from splitlab.core.stats.comparison import compare
from splitlab.core.stats.means import mean_estimate
from splitlab.core.stats.sufficient import Moments

__all__ = ["BALANCE_ALPHA", "BalanceCheck", "balance_check"]

BALANCE_ALPHA = 0.01
"""The level of the balance test below which an in-experiment covariate is refused."""


@dataclass(frozen=True)
class BalanceCheck:
    """One in-experiment covariate's balance test against control."""

    covariate: str
    means: dict[str, float]
    """The covariate's mean per arm (control first)."""
    differences: dict[str, float]
    """Per treatment: its mean minus control's."""
    p_values: dict[str, float]
    """Per treatment: Welch's two-sided p-value of the difference."""
    balance_alpha: float
    used: bool
    """False when the covariate was refused (some p-value below ``balance_alpha``)."""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def p_value(self) -> float:
        """The smallest p-value over treatments (what decided)."""
        finite = [p for p in self.p_values.values() if math.isfinite(p)]
        return min(finite) if finite else math.nan

    def message(self) -> str:
        """The evidence, as a sentence."""
        means = ", ".join(f"{v} {m:.6g}" for v, m in self.means.items())
        diffs = ", ".join(
            f"{v} {d:+.6g} (p={self.p_values[v]:.3g})" for v, d in self.differences.items()
        )
        if self.used:
            return (
                f"in-experiment covariate {self.covariate!r} is balanced (means {means}; "
                f"differences {diffs}; p >= {self.balance_alpha:g}): used"
            )
        return (
            f"in-experiment covariate {self.covariate!r} was moved by the treatment (means "
            f"{means}; differences {diffs}; p < {self.balance_alpha:g}): refused, the analysis "
            "uses the other covariates; drop it or measure it before exposure"
        )

    def to_dict(self) -> dict[str, Any]:
        def number(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {
            "covariate": self.covariate,
            "used": self.used,
            "balance_alpha": self.balance_alpha,
            "means": {v: number(m) for v, m in self.means.items()},
            "differences": {v: number(d) for v, d in self.differences.items()},
            "p_values": {v: number(p) for v, p in self.p_values.items()},
            "p_value": number(self.p_value),
            "message": self.message(),
        }


def balance_check(
    arms: Sequence[Moments],
    variants: Sequence[str],
    column: int,
    name: str,
    balance_alpha: float = BALANCE_ALPHA,
) -> BalanceCheck:
    """Welch's test of covariate ``column`` between control (``arms[0]``) and each treatment.

    A p-value that cannot be computed (fewer than 2 units, no variance in either arm with
    different means) does not refuse the covariate on its own; a difference with zero
    variance in both arms does (the p-value is then 0).
    """
    if len(arms) != len(variants) or len(arms) < 2:
        raise ValueError("arms and variants must align and hold control plus >= 1 treatment")
    if not 0.0 < balance_alpha < 1.0:
        raise ValueError(f"balance_alpha must be in (0, 1); got {balance_alpha}")
    control = mean_estimate(arms[0], column)
    means = {variants[0]: control.mean}
    differences: dict[str, float] = {}
    p_values: dict[str, float] = {}
    for v, m in zip(variants[1:], arms[1:], strict=True):
        treated = mean_estimate(m, column)
        means[v] = treated.mean
        differences[v] = treated.mean - control.mean
        if control.variance == 0.0 and treated.variance == 0.0:
            p_values[v] = 1.0 if differences[v] == 0.0 else 0.0
        else:
            p_values[v] = compare(control, treated).p_value
    used = not any(math.isfinite(p) and p < balance_alpha for p in p_values.values())
    return BalanceCheck(name, means, differences, p_values, balance_alpha, used)
