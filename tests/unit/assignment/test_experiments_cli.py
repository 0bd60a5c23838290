"""``splitlab experiments``: file reading, output and one-line errors (the API is faked with an
httpx transport)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from splitlab.cli import build_app
from splitlab.cli.experiments import CommandError, read_experiment_file

REPO = Path(__file__).resolve().parents[3]
EXPERIMENT = {
    "key": "ranker-v3",
    "name": "Ranker v3",
    "hypothesis": "",
    "owner": "search",
    "status": "draft",
    "version": 1,
    "bucket_version": 0,
    "coverage": 0.2,
    "metrics": {"primary": "conversion"},
    "allowed_actions": ["start", "archive"],
    "targeting": None,
    "updated_at": "2026-11-23T10:00:00+00:00",
    "variants": [{"key": "control", "weight": 0.5, "model": None}, {"key": "t", "weight": 0.5}],
}


def test_the_example_file_reads_as_a_valid_experiment() -> None:
    from splitlab.assigning.definitions import to_definition
    from splitlab_assignment.schemas import ExperimentCreate

    data = read_experiment_file(REPO / "examples" / "experiment.yaml")
    spec = ExperimentCreate.model_validate(data).model_dump()
    assert to_definition({**spec, "status": "draft"}).key == "ranker-v3"


def test_bad_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="does not exist"):
        read_experiment_file(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(CommandError, match="not valid json"):
        read_experiment_file(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(CommandError, match="one experiment object"):
        read_experiment_file(listed)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/experiments/missing":
            return httpx.Response(
                404, json={"error": {"code": "not_found", "message": "no experiment 'missing'"}}
            )
        if request.url.path == "/experiments" and request.method == "GET":
            return httpx.Response(200, json={"experiments": [EXPERIMENT]})
        return httpx.Response(200, json=EXPERIMENT)

    def fake_request(method: str, url: str, **kwargs: Any) -> httpx.Response:
        with httpx.Client(transport=httpx.MockTransport(handler)) as client:
            return client.request(method, url, **kwargs)

    monkeypatch.setattr(httpx, "request", fake_request)
    monkeypatch.setenv("SPLITLAB_ADMIN_API_KEY", "cli-key")
    monkeypatch.setenv("SPLITLAB_ASSIGNMENT_URL", "http://assignment.test")
    return seen


def test_create_show_list_and_actions(api: list[httpx.Request], tmp_path: Path) -> None:
    runner = CliRunner()
    app = build_app()
    created = runner.invoke(
        app, ["experiments", "create", str(REPO / "examples" / "experiment.yaml")]
    )
    assert created.exit_code == 0, created.output
    assert "ranker-v3" in created.output
    assert api[-1].headers["authorization"] == "Bearer cli-key"
    assert json.loads(api[-1].content)["key"] == "ranker-v3"
    as_json = runner.invoke(app, ["experiments", "show", "ranker-v3", "--format", "json"])
    assert json.loads(as_json.output)["key"] == "ranker-v3"
    listed = runner.invoke(app, ["experiments", "list"])
    assert "control=0.5" in listed.output
    for action in ("start", "pause", "stop", "archive"):
        result = runner.invoke(app, ["experiments", action, "ranker-v3"])
        assert result.exit_code == 0
        assert (api[-1].method, api[-1].url.path) == ("POST", f"/experiments/ranker-v3/{action}")


def test_api_errors_exit_non_zero_with_the_message(api: list[httpx.Request]) -> None:
    result = CliRunner().invoke(build_app(), ["experiments", "show", "missing"])
    assert result.exit_code == 1
    assert "404: no experiment 'missing'" in result.output


def test_start_force_asks_the_api_to_skip_the_preflight_refusal(api: list[httpx.Request]) -> None:
    result = CliRunner().invoke(build_app(), ["experiments", "start", "ranker-v3", "--force"])
    assert result.exit_code == 0, result.output
    assert (api[-1].url.path, api[-1].url.params.get("force")) == (
        "/experiments/ranker-v3/start",
        "true",
    )
    assert "x-splitlab-actor" not in api[-1].headers  # the audit name comes from the key


def test_segment_attribute_adds_to_the_current_list(
    api: list[httpx.Request], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``update --segment-attribute`` PATCHes the current list plus the named ones (each once);
    ``create --segment-attribute`` adds to the file's; ``show`` lists them."""
    monkeypatch.setitem(EXPERIMENT, "segment_attributes", ["plan"])
    runner = CliRunner()
    app = build_app()
    updated = runner.invoke(
        app,
        ["experiments", "update", "ranker-v3", "--segment-attribute", "country",
         "--segment-attribute", "plan", "--segment-attribute", "country"],
    )  # fmt: skip
    assert updated.exit_code == 0, updated.output
    assert (api[-2].method, api[-1].method) == ("GET", "PATCH")
    assert json.loads(api[-1].content) == {"segment_attributes": ["plan", "country"]}
    assert "segment attributes: plan" in updated.output

    patch = tmp_path / "patch.yaml"
    patch.write_text("segment_attributes: [tier]\n")
    from_file = runner.invoke(
        app,
        ["experiments", "update", "ranker-v3", "-f", str(patch), "--segment-attribute", "os"],
    )
    assert from_file.exit_code == 0, from_file.output
    assert api[-2].method == "PATCH"  # the file's list is the base: no GET
    assert json.loads(api[-1].content) == {"segment_attributes": ["tier", "os"]}

    created = runner.invoke(
        app,
        ["experiments", "create", str(REPO / "examples" / "experiment.yaml"),
         "--segment-attribute", "country"],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert json.loads(api[-1].content)["segment_attributes"] == ["platform", "country"]
