"""Charts of the console, drawn by the server as SVG from the numbers (no script, no CDN).

Pure functions of plain data: a forest plot (effect and CI per treatment of one metric) and
the effect over time (one point per results snapshot, with its always-valid bounds as a band).
Every label is XML-escaped; points carry ``class="point"`` so a reader (or a test) can count them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape

__all__ = ["ForestRow", "TimePoint", "forest_svg", "timeline_svg"]

WIDTH = 640
POSITIVE = "#1f7a3a"
NEGATIVE = "#b3261e"
NEUTRAL = "#555555"
BAND = "#c9dcf2"


@dataclass(frozen=True)
class ForestRow:
    label: str
    effect: float | None
    ci_lower: float | None
    ci_upper: float | None
    significant: bool


@dataclass(frozen=True)
class TimePoint:
    at: datetime
    effect: float | None
    cs_lower: float | None
    cs_upper: float | None


def _finite(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _scale(low: float, high: float, left: float, right: float) -> tuple[float, float, float]:
    """(lo, hi, pixels per unit) of an axis around [low, high] with 0 inside and a margin."""
    low, high = min(low, 0.0), max(high, 0.0)
    if high - low < 1e-12:
        low, high = low - 1.0, high + 1.0
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad
    return low, high, (right - left) / (high - low)


def _number(value: float) -> str:
    return f"{value:.3g}"


def forest_svg(rows: Sequence[ForestRow], title: str) -> str:
    """Effect (dot) and CI (line) per row against a dashed zero line."""
    left, right, top, step = 150.0, WIDTH - 20.0, 30.0, 28.0
    height = int(top + step * max(len(rows), 1) + 36)
    bounds = _finite([v for r in rows for v in (r.effect, r.ci_lower, r.ci_upper)])
    low, high, per = _scale(min(bounds, default=-1.0), max(bounds, default=1.0), left, right)

    def x(value: float) -> float:
        return left + (value - low) * per

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart forest" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title, {chr(34): "&quot;"})}">',
        f'<text x="{left}" y="16" class="title">{escape(title)}</text>',
        f'<line x1="{x(0):.1f}" y1="{top - 8}" x2="{x(0):.1f}" y2="{height - 30}" '
        'stroke="#999" stroke-dasharray="4 3"/>',
    ]
    for i, row in enumerate(rows):
        y = top + step * i + step / 2
        parts.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{escape(row.label)}</text>")  # fmt: skip
        if row.effect is None or not math.isfinite(row.effect):
            parts.append(f'<text x="{x(0) + 6:.1f}" y="{y + 4:.1f}">no estimate</text>')
            continue
        color = NEUTRAL
        if row.significant:
            color = POSITIVE if row.effect > 0 else NEGATIVE
        lo = row.ci_lower if row.ci_lower is not None else row.effect
        hi = row.ci_upper if row.ci_upper is not None else row.effect
        parts.append(
            f'<line x1="{x(max(lo, low)):.1f}" y1="{y:.1f}" x2="{x(min(hi, high)):.1f}" '
            f'y2="{y:.1f}" stroke="{color}" stroke-width="3"/>'
        )
        parts.append(
            f'<circle class="point" cx="{x(row.effect):.1f}" cy="{y:.1f}" r="5" fill="{color}">'
            f"<title>{escape(row.label)}: {_number(row.effect)} "
            f"[{_number(lo)}, {_number(hi)}]</title></circle>"
        )
    axis_y = height - 22
    for value in (low, 0.0, high):
        parts.append(f'<text x="{x(value):.1f}" y="{axis_y + 14}" text-anchor="middle" '
                     f'class="tick">{_number(value)}</text>')  # fmt: skip
    parts.append(f'<line x1="{left}" y1="{axis_y}" x2="{right}" y2="{axis_y}" stroke="#bbb"/>')
    parts.append("</svg>")
    return "".join(parts)


def timeline_svg(points: Sequence[TimePoint], title: str) -> str:
    """Effect over time (a point per snapshot) inside its always-valid confidence band."""
    left, right, top, bottom = 60.0, WIDTH - 20.0, 28.0, 210.0
    height = int(bottom + 34)
    bounds = _finite([v for p in points for v in (p.effect, p.cs_lower, p.cs_upper)])
    low, high, per = _scale(min(bounds, default=-1.0), max(bounds, default=1.0), bottom, top)
    times = [p.at.timestamp() for p in points]
    t0, t1 = (min(times), max(times)) if times else (0.0, 1.0)
    span = t1 - t0 or 1.0

    def x(at: float) -> float:
        if len(points) == 1:
            return (left + right) / 2
        return left + (at - t0) / span * (right - left)

    def y(value: float) -> float:
        return bottom - (value - low) * -per

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart timeline" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title, {chr(34): "&quot;"})}">',
        f'<text x="{left}" y="16" class="title">{escape(title)}</text>',
    ]
    banded = [
        (x(t), p.cs_lower, p.cs_upper)
        for t, p in zip(times, points, strict=True)
        if p.cs_lower is not None and p.cs_upper is not None
    ]
    if len(banded) >= 2:
        upper = " ".join(f"{bx:.1f},{y(max(min(hi, high), low)):.1f}" for bx, _, hi in banded)
        lower = " ".join(
            f"{bx:.1f},{y(min(max(lo, low), high)):.1f}" for bx, lo, _ in reversed(banded)
        )
        parts.append(f'<polygon class="band" points="{upper} {lower}" fill="{BAND}"/>')
    for bx, lo, hi in banded:
        parts.append(
            f'<line x1="{bx:.1f}" y1="{y(max(min(hi, high), low)):.1f}" x2="{bx:.1f}" '
            f'y2="{y(min(max(lo, low), high)):.1f}" stroke="#7a9cc6"/>'
        )
    parts.append(f'<line x1="{left}" y1="{y(0):.1f}" x2="{right}" y2="{y(0):.1f}" '
                 'stroke="#999" stroke-dasharray="4 3"/>')  # fmt: skip
    line = [(x(t), p.effect) for t, p in zip(times, points, strict=True)
            if p.effect is not None and math.isfinite(p.effect)]  # fmt: skip
    if len(line) >= 2:
        path = " ".join(f"{px:.1f},{y(v):.1f}" for px, v in line)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#1a4d8f" stroke-width="2"/>')
    for t, p in zip(times, points, strict=True):
        if p.effect is None or not math.isfinite(p.effect):
            continue
        bounds_text = (
            f" [{_number(p.cs_lower)}, {_number(p.cs_upper)}]"
            if p.cs_lower is not None and p.cs_upper is not None
            else ""
        )
        parts.append(
            f'<circle class="point" cx="{x(t):.1f}" cy="{y(p.effect):.1f}" r="4" fill="#1a4d8f">'
            f"<title>{p.at:%Y-%m-%d %H:%M} UTC: {_number(p.effect)}{bounds_text}</title></circle>"
        )
    for value in (low, 0.0, high):
        parts.append(f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end" '
                     f'class="tick">{_number(value)}</text>')  # fmt: skip
    if points:
        first, last = points[0].at, points[-1].at
        parts.append(f'<text x="{left}" y="{height - 8}" class="tick">'
                     f"{first:%Y-%m-%d %H:%M}</text>")  # fmt: skip
        parts.append(f'<text x="{right}" y="{height - 8}" text-anchor="end" class="tick">'
                     f"{last:%Y-%m-%d %H:%M}</text>")  # fmt: skip
    else:
        parts.append(f'<text x="{left}" y="{(top + bottom) / 2:.1f}">no snapshots yet</text>')
    parts.append("</svg>")
    return "".join(parts)
