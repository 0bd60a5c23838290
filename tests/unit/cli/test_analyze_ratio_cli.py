"""``splitlab analyze`` with ratio CUPED, ``--cluster`` and ``--in-experiment-covariate``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import splitlab
from splitlab.cli import build_app
from splitlab.core.analysis.analyze import CovariateRefusedWarning

runner = CliRunner()


def _rows(users: int = 600, seed: int = 0) -> pd.DataFrame:
    """Several rows (requests) per user; the variant is the user's."""
    rng = np.random.default_rng(seed)
    variant = np.where(rng.random(users) < 0.5, "control", "treatment")
    per_user = rng.poisson(2.0, users) + 1
    user = np.repeat(np.arange(users), per_user)
    level = rng.normal(50.0, 10.0, users)
    treated = variant[user] == "treatment"
    return pd.DataFrame(
        {
            "user_id": user,
            "variant": variant[user],
            "latency": level[user] + rng.normal(0, 5, user.size),
            "level_pre": level[user] + rng.normal(0, 2, users)[user],
            "device": rng.normal(0, 1, users)[user],
            "pages": rng.normal(0, 1, user.size) + 0.8 * treated,
        }
    )


@pytest.fixture
def rows_file(tmp_path: Path) -> Path:
    path = tmp_path / "requests.csv"
    _rows().to_csv(path, index=False)
    return path


def _json(args: list[str]) -> dict[str, object]:
    result = runner.invoke(build_app(), ["analyze", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    out: dict[str, object] = json.loads(result.stdout)
    return out


def test_cluster_matches_the_library(rows_file: Path) -> None:
    out = _json([str(rows_file), "--metric", "latency", "--cluster", "user_id"])
    expected = splitlab.analyze(
        pd.read_csv(rows_file), metrics=["latency"], cluster_col="user_id"
    ).to_dict()
    assert out == json.loads(json.dumps(expected))
    assert out["cluster"] == {"column": "user_id", "clusters": 600, "rows": len(_rows())}


def test_ratio_cuped_and_cunopac_match_the_library(rows_file: Path) -> None:
    result = runner.invoke(
        build_app(),
        [
            "analyze",
            str(rows_file),
            "--metric",
            "latency",
            "--cluster",
            "user_id",
            "--covariate",
            "level_pre",
            "--in-experiment-covariate",
            "device",
            "--in-experiment-covariate",
            "pages",
            "--method",
            "cuped",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "warning: latency: in-experiment covariate 'pages' was moved" in result.stderr
    out = json.loads(result.stdout)
    with pytest.warns(CovariateRefusedWarning):
        expected = splitlab.analyze(
            pd.read_csv(rows_file),
            metrics=["latency"],
            cluster_col="user_id",
            covariates=["level_pre"],
            in_experiment_covariates=["device", "pages"],
            method="cuped",
        ).to_dict()
    assert out == json.loads(json.dumps(expected))
    checks = out["metrics"]["latency"]["in_experiment_covariates"]
    assert [(c["covariate"], c["used"]) for c in checks] == [("device", True), ("pages", False)]


def test_errors_name_the_options(rows_file: Path) -> None:
    frame = _rows()
    frame.loc[0, "variant"] = "treatment" if frame.loc[0, "variant"] == "control" else "control"
    frame.loc[1, ["user_id", "variant"]] = [frame.loc[0, "user_id"], "control"]
    frame.loc[0, "variant"] = "treatment"
    frame.to_csv(rows_file, index=False)
    result = runner.invoke(
        build_app(), ["analyze", str(rows_file), "--metric", "latency", "--cluster", "user_id"]
    )
    assert result.exit_code == 2
    assert "--cluster 'user_id'" in result.stderr
    result = runner.invoke(
        build_app(),
        ["analyze", str(rows_file), "--metric", "latency", "--in-experiment-covariate", "x"],
    )
    assert result.exit_code == 2
    assert "not found" in result.stderr


def test_ratio_with_covariates_is_ratio_cuped(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 3000
    activity = rng.gamma(2.0, 2.0, n)
    ctr = rng.beta(2, 3, n)
    sessions = rng.poisson(activity) + 1
    sessions_pre = rng.poisson(activity) + 1
    frame = pd.DataFrame(
        {
            "variant": np.where(rng.random(n) < 0.5, "control", "treatment"),
            "clicks": rng.binomial(sessions, ctr),
            "sessions": sessions,
            "clicks_pre": rng.binomial(sessions_pre, ctr),
            "sessions_pre": sessions_pre,
        }
    )
    path = tmp_path / "units.csv"
    frame.to_csv(path, index=False)
    out = _json([str(path), "--ratio", "ctr=clicks/sessions", "--covariate", "clicks_pre",
                 "--covariate", "sessions_pre", "--method", "cuped"])  # fmt: skip
    expected = splitlab.analyze(
        pd.read_csv(path),
        ratio_metrics={"ctr": ("clicks", "sessions")},
        covariates=["clicks_pre", "sessions_pre"],
        method="cuped",
    ).to_dict()
    assert out == json.loads(json.dumps(expected))
    metric = out["metrics"]["ctr"]  # type: ignore[index]
    assert metric["method"] == "cuped"
    assert metric["variance_reduction"] > 0.2
