"""The console (issue 19, items 2-4) through the in-process app, the real Postgres and Redis and
the assignment service's app: login and its cookie, CSRF, escaping, the pages' numbers and
downloads, the upload checks. The browser tests (tests/browser) drive the same pages in
chromium against running processes."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from splitlab.assigning.runtime import DiscardingPublisher
from splitlab.platform.settings import Settings
from splitlab.reports.numbers import number, p_value, share
from splitlab.web.state import app_state
from splitlab_analyzer.app import create_app
from splitlab_analyzer.deps import AnalyzerState
from splitlab_analyzer.service.automation import Automation
from tests.integration.analyzer.conftest import ADMIN, ADMIN_KEY, define_metrics
from tests.integration.analyzer.simulation import simulate
from tests.integration.analyzer.test_isolation import write
from tests.integration.analyzer.test_segments import with_attributes

pytestmark = pytest.mark.integration
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
EVIL = '<script>window.__pwned = 1</script>"ranker" & co'


@pytest.fixture
def assignment(analyzer_settings: Settings, redis_client: Any) -> Iterator[TestClient]:
    from splitlab_assignment.app import create_app as create_assignment_app

    app = create_assignment_app(
        analyzer_settings.model_copy(update={"admin_api_key": SecretStr(ADMIN_KEY)}),
        publisher_factory=lambda _settings: DiscardingPublisher(),
    )
    with TestClient(app) as client:
        yield client


@pytest.fixture
def console(
    analyzer_settings: Settings, assignment: TestClient, tmp_path: Path
) -> Iterator[TestClient]:
    settings = analyzer_settings.model_copy(
        update={"console_upload_dir": tmp_path / "uploads", "console_upload_max_bytes": 20_000}
    )
    with TestClient(create_app(settings, assignment_http=assignment)) as client:
        yield client


def token(page: str) -> str:
    found = CSRF.search(page)
    assert found, "the page has no CSRF token"
    return found.group(1)


def log_in(client: TestClient) -> None:
    form = client.get("/ui/login")
    answer = client.post("/ui/login", data={"key": ADMIN_KEY, "csrf_token": token(form.text)},
                         follow_redirects=False)  # fmt: skip
    assert answer.status_code == 303, answer.text


def running_experiment(
    assignment: TestClient, engine: Engine, name: str, attributes: bool = False
) -> str:
    """A started experiment with 800 simulated units; ``attributes``: every unit's first
    exposure carries its country, tenure and device (``test_segments.with_attributes``)."""
    key = f"console-{uuid.uuid4().hex[:8]}"
    body = {
        "key": key, "name": name, "owner": "ana", "hypothesis": "<b>bold</b> claim",
        "variants": [{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}],
        "metrics": {"primary": "revenue", "secondary": ["clicks"],
                    "guardrails": [{"metric": "latency", "margin": 0.05}]},
    }  # fmt: skip
    created = assignment.post("/experiments", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    assert assignment.post(f"/experiments/{key}/start", headers=ADMIN).status_code == 200
    sim = simulate(key, n=800, seed=7, variants=("control", "treatment"), weights=(0.5, 0.5))
    write(engine, with_attributes(sim, seed=7)[0] if attributes else sim.events)
    return key


def test_pages_need_a_login_and_the_cookie_is_signed_httponly_and_samesite(
    console: TestClient,
) -> None:
    answer = console.get("/ui", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/ui/login")
    form = console.get("/ui/login")
    cookie = form.headers["set-cookie"]
    assert "httponly" in cookie.lower()
    assert "samesite=strict" in cookie.lower()
    assert "path=/ui" in cookie.lower()
    wrong = console.post("/ui/login", data={"key": "nope", "csrf_token": token(form.text)})
    assert wrong.status_code == 403
    assert "not the admin key" in wrong.text
    log_in(console)
    assert console.get("/ui").status_code == 200
    # A forged cookie (not signed with the console's key) is no session.
    console.cookies.clear()
    console.cookies.set("splitlab_console", "eyJ1c2VyIjogImFkbWluIn0=.forged.sig", path="/ui")
    assert console.get("/ui", follow_redirects=False).status_code == 303


def test_a_post_without_the_sessions_csrf_token_is_refused(console: TestClient) -> None:
    log_in(console)
    page = console.get("/ui/uploads/new").text
    refused = console.post("/ui/logout", data={})
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    forged = console.post("/ui/logout", data={"csrf_token": "x" + token(page)})
    assert forged.status_code == 403
    assert console.get("/ui", follow_redirects=False).status_code == 200  # still logged in
    upload = console.post("/ui/uploads", data={"kind": "variance_reduction"},
                          files={"file": ("a.csv", b"variant,y\ncontrol,1\n")})  # fmt: skip
    assert upload.status_code == 403
    out = console.post("/ui/logout", data={"csrf_token": token(page)}, follow_redirects=False)
    assert out.status_code == 303
    assert console.get("/ui", follow_redirects=False).status_code == 303


def test_the_list_and_the_experiment_page_show_results_escaped_with_downloads(
    console: TestClient, assignment: TestClient, engine: Engine
) -> None:
    define_metrics(console)
    key = running_experiment(assignment, engine, EVIL)
    automation: Automation = app_state(console.app, AnalyzerState).automation
    automation.snapshot_pass()
    automation.snapshot_pass()
    log_in(console)

    listing = console.get("/ui", params={"status": "running", "owner": "an"}).text
    assert key in listing
    assert "<script>window.__pwned" not in listing
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;&#34;ranker&#34; &amp; co" in listing
    assert key not in console.get("/ui", params={"status": "stopped"}).text

    page = console.get(f"/ui/experiments/{key}")
    assert page.status_code == 200, page.text
    html = page.text
    assert "<script>window.__pwned" not in html
    assert "&lt;b&gt;bold&lt;/b&gt; claim" in html
    assert html.count('<section class="card metric"') == 3  # revenue, clicks, latency
    assert 'data-snapshots="2"' in html
    timeline = html.split('class="effect-over-time"', 1)[1].split("</figure>", 1)[0]
    assert timeline.count('class="point"') == 2
    assert "SRM check" in html
    assert "Audit trail" in html
    assert ">start<" in html  # the audit entry from the assignment service

    as_json = console.get(f"/ui/experiments/{key}/results.json")
    results = console.get(f"/experiments/{key}/results").json()
    assert as_json.json()["metrics"]["revenue"] == results["metrics"]["revenue"]
    rows = list(csv.DictReader(io.StringIO(console.get(f"/ui/experiments/{key}/results.csv").text)))
    assert {(r["metric"], r["variant"]) for r in rows} == {
        ("revenue", "treatment"), ("clicks", "treatment"), ("latency", "treatment")
    }  # fmt: skip
    revenue = next(r for r in rows if r["metric"] == "revenue")
    assert (
        float(revenue["effect"])
        == results["metrics"]["revenue"]["comparisons"]["treatment"]["effect"]
    )


def test_a_metric_s_named_test_and_cohens_d_are_on_its_card_and_in_the_csv(
    console: TestClient, assignment: TestClient, engine: Engine
) -> None:
    # The console once showed the comparison alone: an owner who defined a metric with
    # test=mann_whitney saw neither its Hodges-Lehmann shift nor Cohen's d anywhere.
    define_metrics(console)
    ranked = {"name": "revenue_ranked", "source": "outcome", "outcome_type": "purchase",
              "aggregation": "sum", "test": "mann_whitney"}  # fmt: skip
    made = console.post("/metrics", json=ranked, headers=ADMIN)
    assert made.status_code in (201, 409), made.text
    key = f"console-{uuid.uuid4().hex[:8]}"
    arms = [{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}]
    body = {"key": key, "name": "ranked", "metrics": {"primary": "revenue_ranked"},
            "variants": arms}  # fmt: skip
    assert assignment.post("/experiments", json=body, headers=ADMIN).status_code == 201
    assert assignment.post(f"/experiments/{key}/start", headers=ADMIN).status_code == 200
    sim = simulate(key, n=800, seed=8, variants=("control", "treatment"), weights=(0.5, 0.5))
    write(engine, sim.events)
    log_in(console)
    results = console.get(f"/experiments/{key}/results").json()
    comparison = results["metrics"]["revenue_ranked"]["comparisons"]["treatment"]
    named = comparison["test"]
    assert named["test"] == "mann_whitney"
    html = console.get(f"/ui/experiments/{key}").text
    card = html.split('id="metric-revenue_ranked"', 1)[1].split("</section>", 1)[0]
    assert "Cohen&#39;s d" in card or "Cohen's d" in card
    assert f">{number(comparison['cohens_d'])}<" in card
    table = card.split('class="list named-test" data-test="mann_whitney"', 1)[1]
    assert "Mann-Whitney U with the Hodges-Lehmann shift" in table
    assert f">{number(named['effect'])}<" in table
    assert f"[{number(named['ci_lower'])}, {number(named['ci_upper'])}]" in table
    assert f">{share(named['prob_superiority'])}<" in table
    rows = list(csv.DictReader(io.StringIO(console.get(f"/ui/experiments/{key}/results.csv").text)))
    assert rows[0]["test"] == "mann_whitney"
    assert float(rows[0]["test_effect"]) == named["effect"]
    assert float(rows[0]["cohens_d"]) == comparison["cohens_d"]


def test_the_experiment_page_slices_the_results_by_a_unit_attribute(
    console: TestClient, assignment: TestClient, engine: Engine
) -> None:
    # Segments were reachable from the API, the CLI and the HTML report, not from the console.
    define_metrics(console)
    key = running_experiment(assignment, engine, "segmented", attributes=True)
    log_in(console)
    plain = console.get(f"/ui/experiments/{key}").text
    assert 'name="segment"' in plain
    assert 'id="segment-results"' not in plain
    params = {"segment": "country", "segment_correction": "benjamini-hochberg"}
    html = console.get(f"/ui/experiments/{key}", params=params).text
    expected = console.get(f"/experiments/{key}/results", params=params).json()["segments"]
    section = html.split('id="segment-results"', 1)[1].split('id="guardrails"', 1)[0]
    assert "p-values adjusted across segments with benjamini-hochberg" in section
    for label, segment in expected["segments"].items():
        row = section.split(f"<tr><td>{label}</td><td>treatment</td>", 1)[1].split("</tr>", 1)[0]
        revenue = segment["metrics"]["revenue"]["comparisons"]["treatment"]
        assert f"<td>{number(revenue['effect'])}</td>" in row
        assert f"<td>{p_value(revenue['p_value_adjusted'])}</td>" in row
    assert 'value="country"' in html
    unknown = console.get(f"/ui/experiments/{key}", params={"segment": "plan"}).text
    error = unknown.split('id="segment-error"', 1)[1].split("</p>", 1)[0]
    assert "no unit of the experiment has the attribute &#39;plan&#39;" in error
    assert "attributes that exist: country, device, tenure_days" in error
    malformed = console.get(f"/ui/experiments/{key}", params={"segment": "tenure_days:9,3"})
    assert malformed.status_code == 200
    assert 'id="segment-error"' in malformed.text
    assert 'id="decision"' in malformed.text  # the rest of the page still shows


def upload(client: TestClient, content: bytes, **fields: str) -> Any:
    form = client.get("/ui/uploads/new").text
    data = {"csrf_token": token(form), **fields}
    return client.post("/ui/uploads", data=data, files={"file": ("data.csv", content)},
                       follow_redirects=False)  # fmt: skip


def test_upload_checks_name_the_column_and_row_and_keep_nothing(
    console: TestClient, tmp_path: Path
) -> None:
    log_in(console)
    vr = {"kind": "variance_reduction", "variant_col": "variant", "control": "control",
          "metrics": "revenue", "method": "auto"}  # fmt: skip
    rows = "".join(f"{'control' if i % 2 else 'treatment'},{i}.5\n" for i in range(10))
    bad = ("variant,revenue\n" + rows).replace("6.5", "12,5x").encode()
    answer = upload(console, bad, **vr)
    assert answer.status_code == 422
    assert "row 7" in answer.text, answer.text.split("<main>")[1][:800]
    missing = upload(console, b"variant,<img src=x onerror=alert(1)>\ncontrol,1\n", **vr)
    assert missing.status_code == 422
    assert "column &#39;revenue&#39; is not in the file" in missing.text
    assert "<img src=x" not in missing.text
    too_big = upload(console, b"variant,revenue\n" + b"control,1\n" * 3000, **vr)
    assert too_big.status_code == 413
    no_treated = upload(console, b"region,week,sales\na,1,2\n", kind="synthetic_control",
                        unit_col="region", time_col="week", outcome_col="sales",
                        treated="north", intervention_time="1")  # fmt: skip
    assert no_treated.status_code == 422
    assert "treated unit" in no_treated.text
    assert list((tmp_path / "uploads").iterdir()) == []


def test_the_configuration_card_lists_the_segment_attributes(
    console: TestClient, assignment: TestClient, engine: Engine
) -> None:
    define_metrics(console)
    key = running_experiment(assignment, engine, "segmented")
    empty = re.compile(r"<dt>Segment attributes</dt><dd>-</dd>")
    log_in(console)
    assert empty.search(console.get(f"/ui/experiments/{key}").text)
    patch = {"segment_attributes": ["country", "<plan>"]}
    assert assignment.patch(f"/experiments/{key}", json=patch, headers=ADMIN).status_code == 200
    page = console.get(f"/ui/experiments/{key}").text
    assert "<dt>Segment attributes</dt><dd>country, &lt;plan&gt;</dd>" in page
