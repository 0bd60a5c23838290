"""The README's benchmark table is the one ``bench/table.py`` renders from
``bench/results/*.json``: no figure in it was typed by hand (after ``make bench``, run
``python bench/table.py --write``)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_table", ROOT / "bench" / "table.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_readme_table_is_rendered_from_the_results() -> None:
    table = script()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert table.section(readme) == table.render(), "stale: run python bench/table.py --write"


def test_every_benchmark_has_a_row_with_its_figures(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text(json.dumps({
        "started_at": "2026-12-01T10:00:00Z",
        "results": [
            {"benchmark": "x.fast", "figures": {"p99_ms": 6.3612, "per_s": 6017.8, "n": 12000},
             "target": "p99_ms < 10 | strict", "met": True},
            {"benchmark": "x.slow", "figures": {"ratio": 0.00412}, "target": "", "met": False},
        ],
    }))  # fmt: skip
    rows = script().render(tmp_path).splitlines()[2:]
    assert rows == [
        "| `x.fast` | p99_ms 6.36, per_s 6,018, n 12,000 | p99_ms < 10 / strict | yes | "
        "[2026-12-01](bench/results/x.json) |",
        "| `x.slow` | ratio 0.0041 |  | **no** | [2026-12-01](bench/results/x.json) |",
    ]
