"""California's Proposition 99 with ``splitlab.synthetic_control``: writes the plot shown in
``docs/synthetic_control.md`` (``docs/synthetic_control_prop99.png``) and prints the figures.

The panel ships in the causalpy wheel (dev dependency); only its data file is read.
Run: ``uv run python studies/synth_prop99.py``.
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pandas as pd

from splitlab.core.synth import synthetic_control
from splitlab.reports.synth import plot_png

DOCS = Path(__file__).resolve().parents[1] / "docs"


def main() -> None:
    path = importlib.metadata.distribution("causalpy").locate_file(
        "causalpy/data/california_prop99.csv"
    )
    data = pd.read_csv(str(path)).melt(id_vars="Year", var_name="state", value_name="packs")
    figures = {}
    for method in ("classic", "augmented", "forecast", "auto"):
        res = synthetic_control(
            data,
            unit_col="state",
            time_col="Year",
            outcome_col="packs",
            treated="California",
            intervention_time=1989,
            method=method,
        )
        top = sorted(res.weights.items(), key=lambda kv: -abs(kv[1]))[:5]
        figures[method] = {
            "method_used": res.method,
            "att": round(res.att, 2),
            "ci": [round(res.att_ci_lower, 2), round(res.att_ci_upper, 2)],
            "gap_2000": round(res.effects[-1].effect, 2),
            "p_value": round(res.p_value, 4),
            "pre_rmspe": round(res.pre_rmspe, 3),
            "top_weights": {k: round(v, 3) for k, v in top},
            "warnings": res.warnings,
        }
        if method == "classic":
            (DOCS / "synthetic_control_prop99.png").write_bytes(plot_png(res))
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
