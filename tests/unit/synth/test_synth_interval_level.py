"""The ATT interval is labelled with the level it really has, everywhere it is shown (issue 13,
item 14): with 11 donors it is the placebo range, an 83.3% interval, not the nominal 95%."""

from __future__ import annotations

import io
import math

from rich.console import Console

from splitlab.core.synth import synthetic_control
from splitlab.core.synth.inference import interval_level
from splitlab.core.synth.simulation import factor_panel
from splitlab.reports.synth import html_report, summary_table

ARGS = {"unit_col": "unit", "time_col": "time", "outcome_col": "outcome"}


def _table_text(table: object) -> str:
    console = Console(file=io.StringIO(), width=200)
    console.print(table)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_interval_level_is_nominal_with_enough_placebos_and_the_range_level_without() -> None:
    assert interval_level(11, 0.05) == 1 - 2 / 12
    assert interval_level(39, 0.05) == 0.95
    assert interval_level(19, 0.1) == 0.9
    assert math.isnan(interval_level(1, 0.05))


def test_few_donors_label_the_interval_with_its_real_level() -> None:
    panel = factor_panel(12, 30, 20, effect=5.0, seed=4)
    result = synthetic_control(panel, treated="u0", intervention_time=20, method="classic", **ARGS)
    assert result.interval_level == 1 - 2 / 12
    assert result.to_dict()["interval_level"] == 1 - 2 / 12
    assert any("83.3% interval" in w for w in result.warnings)
    table = _table_text(summary_table(result))
    assert "83.3% interval" in table
    assert "95% interval" not in table
    page = html_report(result)
    assert "83.3% interval" in page
    assert "95% interval" not in page


def test_enough_donors_keep_the_nominal_label() -> None:
    panel = factor_panel(45, 30, 20, effect=5.0, seed=4)
    result = synthetic_control(panel, treated="u0", intervention_time=20, method="classic", **ARGS)
    assert result.interval_level == 0.95
    assert "95% interval" in _table_text(summary_table(result))
