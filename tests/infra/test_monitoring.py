"""Prometheus, Alertmanager and Grafana configuration: checked by their own tools, queried live."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.stack import port_open, system_tool, unavailable

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_PORT = int(os.environ.get("SPLITLAB_STACK_PROMETHEUS_PORT", "9090"))
PROMETHEUS = f"http://127.0.0.1:{PROMETHEUS_PORT}"


def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    rules = REPO / "infra" / "prometheus" / "rules"
    for test_file in sorted(rules.glob("*.test.yml")):
        result = subprocess.run(
            [system_tool("promtool"), "test", "rules", test_file.name],
            cwd=rules, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_is_valid_with_the_native_paths(tmp_path: Path) -> None:
    config = (REPO / "infra" / "prometheus" / "prometheus.yml").read_text()
    targets = tmp_path / "targets"
    targets.mkdir()
    for name in ("assignment", "router", "analyzer", "trainer", "alertmanagers"):
        (targets / f"{name}.json").write_text('[{"targets": ["127.0.0.1:1"]}]')
    (tmp_path / "prometheus.yml").write_text(
        config.replace("/etc/prometheus/targets", str(targets)).replace(
            "/etc/prometheus/rules", str(REPO / "infra" / "prometheus" / "rules")
        )
    )
    result = subprocess.run(
        [system_tool("promtool"), "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_config_is_valid() -> None:
    result = subprocess.run(
        [system_tool("amtool"), "check-config", str(REPO / "infra/alertmanager/alertmanager.yml")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


ALERTMANAGER_CONFIG = REPO / "infra" / "alertmanager" / "alertmanager.yml"

ROUTE_CASES = [
    # A page about an experiment: on-call and the owning team.
    ("alertname=SplitLabGuardrailViolated severity=page team=demo-team", "on-call,demo-team"),
    ("alertname=SplitLabSampleRatioMismatch severity=page team=ads", "on-call,experiment-owners"),
    # A ticket about an experiment: the owning team only.
    ("alertname=SplitLabUnderpoweredAtPlannedEnd severity=ticket team=demo-team", "demo-team"),
    ("alertname=SplitLabTreatmentFallingBack severity=ticket team=search", "experiment-owners"),
    ("alertname=SplitLabVariantLatencyAboveControl severity=page team=demo-team",
     "on-call,demo-team"),
    ("alertname=SplitLabCupacModelStale severity=ticket team=demo-team", "demo-team"),
    ("alertname=SplitLabTrainingsFailing severity=ticket team=unowned", "platform"),
    # An experiment without an owner: pages to on-call, tickets to the platform team.
    ("alertname=SplitLabGuardrailViolated severity=page team=unowned", "on-call"),
    ("alertname=SplitLabUnderpoweredAtPlannedEnd severity=ticket team=unowned", "platform"),
    # The platform itself (no team).
    ("alertname=SplitLabServiceDown severity=page service=router", "on-call"),
    ("alertname=SplitLabDeadLetters severity=ticket topic=splitlab.outcomes.v1", "platform"),
]  # fmt: skip


@pytest.mark.parametrize(("labels", "receivers"), ROUTE_CASES)
def test_alertmanager_routes_each_alert_to_its_receivers(labels: str, receivers: str) -> None:
    result = subprocess.run(
        [system_tool("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}",
         f"--verify.receivers={receivers}", *labels.split()],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, (labels, result.stdout + result.stderr)


def test_every_route_and_receiver_has_a_routing_case() -> None:
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    routed = {config["route"]["receiver"]} | {r["receiver"] for r in config["route"]["routes"]}
    tested = {name for _, receivers in ROUTE_CASES for name in receivers.split(",")}
    assert routed == tested
    assert {r["name"] for r in config["receivers"]} == routed


def dashboard_queries() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted((REPO / "infra" / "grafana" / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            if panel["type"] == "row":
                continue
            for target in panel.get("targets", []):
                found.append((path.name, panel["title"], target["expr"]))
    return found


def substitute(expr: str) -> str:
    """Grafana's template variables, as Grafana would fill them for 'All' over the last hour."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__range", "1h")
    return re.sub(r"\$(service|experiment|metric|variant|model)\b", ".*", expr)


@pytest.mark.parametrize(("dashboard", "panel", "expr"), dashboard_queries())
def test_every_dashboard_query_runs_on_the_live_prometheus(
    dashboard: str, panel: str, expr: str
) -> None:
    if not port_open("127.0.0.1", PROMETHEUS_PORT):
        unavailable(f"Prometheus at {PROMETHEUS}")
    response = httpx.get(f"{PROMETHEUS}/api/v1/query", params={"query": substitute(expr)})
    body = response.json()
    assert response.status_code == 200, (dashboard, panel, body)
    assert body["status"] == "success", (dashboard, panel, body)


def test_dashboards_use_the_provisioned_datasource() -> None:
    provisioned = (REPO / "infra/grafana/provisioning/datasources/prometheus.yml").read_text()
    uid = re.search(r"uid: (\S+)", provisioned)
    assert uid is not None
    for path in (REPO / "infra" / "grafana" / "dashboards").glob("*.json"):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] == uid.group(1), (path.name, panel["title"])
        for variable in dashboard["templating"]["list"]:
            assert variable["datasource"]["uid"] == uid.group(1), (path.name, variable["name"])


def test_every_runbook_url_names_a_section_of_the_runbooks() -> None:
    runbooks = (REPO / "docs" / "runbooks.md").read_text()
    lines = runbooks.splitlines()
    sections = {line[3:].strip().lower() for line in lines if line.startswith("## ")}
    rules = (REPO / "infra" / "prometheus" / "rules").glob("*.rules.yml")
    for path in rules:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                url = rule.get("annotations", {}).get("runbook_url")
                if url is not None:
                    assert url.startswith("docs/runbooks.md#"), (path.name, rule["alert"])
                    assert url.split("#", 1)[1] in sections, (path.name, rule["alert"], url)
