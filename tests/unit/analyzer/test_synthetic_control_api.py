from __future__ import annotations

import io

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pydantic import SecretStr

from splitlab.core.synth.simulation import factor_panel
from splitlab.platform.errors import SplitLabError
from splitlab.platform.settings import Settings
from splitlab_analyzer.api import synthetic_control as api

KEY = "synth-test-read-key-0123"


def build() -> FastAPI:
    app = FastAPI()
    app.state.settings = Settings(read_api_key=SecretStr(KEY), _env_file=None)  # type: ignore[call-arg]

    @app.exception_handler(SplitLabError)
    async def _domain(_: Request, exc: SplitLabError) -> JSONResponse:
        return JSONResponse(exc.to_body(), status_code=exc.status_code)

    app.include_router(api.router)
    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(build(), headers={"Authorization": f"Bearer {KEY}"})


def test_the_computation_needs_a_key() -> None:
    """CPU-heavy: never open to whoever reaches the analyzer, even while reads are open."""
    response = TestClient(build()).post(
        "/analyses/synthetic-control", data=FORM, files={"file": ("panel.csv", _csv(), "text/csv")}
    )
    assert response.status_code == 401
    assert "SPLITLAB_READ_API_KEY" in response.json()["error"]["message"]


def _csv(effect: float = 5.0) -> bytes:
    return factor_panel(12, 30, 20, effect=effect, seed=4).to_csv(index=False).encode()


FORM = {
    "unit_col": "unit",
    "time_col": "time",
    "outcome_col": "outcome",
    "treated": "u0",
    "intervention_time": "20",
    "method": "classic",
}


def test_returns_the_library_json(client: TestClient) -> None:
    response = client.post(
        "/analyses/synthetic-control", data=FORM, files={"file": ("panel.csv", _csv(), "text/csv")}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "method",
        "weights",
        "att",
        "att_ci_lower",
        "att_ci_upper",
        "interval_level",
        "rel_att",
        "p_value",
        "pre_rmspe",
        "post_rmspe",
        "effects",
        "warnings",
    }
    assert body["method"] == "classic"
    assert body["att"] == pytest.approx(5.0, abs=2.5)


def test_parquet_upload(client: TestClient) -> None:
    buffer = io.BytesIO()
    factor_panel(12, 30, 20, seed=4).to_parquet(buffer)
    response = client.post(
        "/analyses/synthetic-control",
        data={**FORM, "placebo": "false"},
        files={"file": ("panel.parquet", buffer.getvalue(), "application/octet-stream")},
    )
    assert response.status_code == 200, response.text
    assert response.json()["p_value"] is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"treated": "atlantis"}, "treated"),
        ({"intervention_time": "999"}, "intervention_time"),
        ({"outcome_col": "sales"}, "outcome_col"),
        ({"method": "magic"}, "method"),
        ({"alpha": "2"}, "alpha"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    client: TestClient, change: dict[str, str], field: str
) -> None:
    response = client.post(
        "/analyses/synthetic-control",
        data={**FORM, **change},
        files={"file": ("panel.csv", _csv(), "text/csv")},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == field


def test_unreadable_and_empty_files_are_422(client: TestClient) -> None:
    for content in (b"", b"\x00\x01garbage"):
        response = client.post(
            "/analyses/synthetic-control",
            data=FORM,
            files={"file": ("panel.csv", content, "text/csv")},
        )
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][-1] in {"file", "unit_col"}


def test_oversized_upload_is_413(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "MAX_UPLOAD_BYTES", 100)
    response = client.post(
        "/analyses/synthetic-control", data=FORM, files={"file": ("panel.csv", _csv(), "text/csv")}
    )
    assert response.status_code == 413
