"""How reports write numbers: one place, so tables, HTML and CLI output agree."""

from __future__ import annotations

import math


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def number(value: float | None) -> str:
    """Four significant digits; ``n/a`` for missing or non-finite values."""
    return f"{value:.4g}" if _finite(value) else "n/a"


def signed_percent(value: float | None) -> str:
    """A relative change, e.g. ``+3.09%``."""
    return f"{value:+.2%}" if _finite(value) else "n/a"


def share(value: float | None) -> str:
    """An unsigned share, e.g. ``83.8%``."""
    return f"{value:.1%}" if _finite(value) else "n/a"


def p_value(value: float | None) -> str:
    """Four decimals, scientific below 1e-4."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.4f}" if value >= 1e-4 else f"{value:.1e}"
