"""Pre-flight checks: does what an experiment names exist where it will be needed?

Its metrics (primary, secondary, guardrails) must be defined in the analyzer
(``GET /metric-definitions``) and the models its variants name registered in the router
(``GET /models/{name}/{version}``); both over HTTP, as services never import each other. At
create the report rides along with the answer (a draft may come before its metrics); ``start``
is refused while anything is missing (422 naming each) or a service cannot say (503 naming it),
unless the caller forces it. See docs/assignment.md, "Pre-flight checks".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from splitlab.platform.errors import DependencyUnavailableError, InvalidInputError
from splitlab.platform.settings import Settings

ANALYZER = "analyzer"
ROUTER = "router"


@dataclass(frozen=True)
class Missing:
    field: str
    """Where the experiment names it: ``metrics.primary``, ``variants[1].model``, ..."""
    name: str
    message: str


@dataclass(frozen=True)
class Unreachable:
    service: str
    reason: str


@dataclass
class PreflightReport:
    missing: list[Missing] = field(default_factory=list)
    unreachable: list[Unreachable] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unreachable

    def describe(self) -> str:
        """One sentence per problem, joined: what an error message or a warning says."""
        parts = [m.message for m in self.missing]
        parts += [
            f"{u.service}: could not be asked ({u.reason}); check that it runs at "
            f"SPLITLAB_{u.service.upper()}_URL"
            for u in self.unreachable
        ]
        return "; ".join(parts)


def named_metrics(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, metric name) of every metric the experiment names."""
    metrics = spec.get("metrics") or {}
    found = [("metrics.primary", str(metrics["primary"]))] if metrics.get("primary") else []
    secondary = metrics.get("secondary") or []
    found += [(f"metrics.secondary[{i}]", str(m)) for i, m in enumerate(secondary)]
    found += [
        (f"metrics.guardrails[{i}].metric", str(g["metric"]))
        for i, g in enumerate(metrics.get("guardrails") or [])
    ]
    return found


def named_models(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, model reference) of every variant that names a model."""
    return [
        (f"variants[{i}].model", str(v["model"]))
        for i, v in enumerate(spec.get("variants") or [])
        if v.get("model")
    ]


class PreflightChecker:
    """Asks the analyzer and the router; ``http`` clients are injectable (tests: in-process)."""

    def __init__(
        self, analyzer: httpx.Client, router: httpx.Client, headers: dict[str, str] | None = None
    ) -> None:
        self.analyzer = analyzer
        self.router = router
        self.headers = headers or {}
        self.owned: list[httpx.Client] = []
        """The clients this checker built (and closes); given ones belong to the caller."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        analyzer: httpx.Client | None = None,
        router: httpx.Client | None = None,
    ) -> PreflightChecker:
        """Clients with a read key if one is configured (reads may need it), else the admin
        key (which passes every check); the given clients get the same header per call."""
        key = settings.read_api_key or settings.admin_api_key
        headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}
        timeout = settings.preflight_timeout_seconds
        checker = cls(
            analyzer or httpx.Client(base_url=settings.analyzer_url, timeout=timeout),
            router or httpx.Client(base_url=settings.router_url, timeout=timeout),
            headers,
        )
        checker.owned = [
            c
            for c, given in ((checker.analyzer, analyzer), (checker.router, router))
            if given is None
        ]
        return checker

    def close(self) -> None:
        for client in self.owned:
            client.close()

    def check(self, spec: Mapping[str, Any]) -> PreflightReport:
        report = PreflightReport()
        metrics = named_metrics(spec)
        if metrics:
            self._check_metrics(metrics, report)
        models = named_models(spec)
        if models:
            self._check_models(models, report)
        return report

    def _get(self, client: httpx.Client, service: str, path: str, report: PreflightReport) -> Any:
        """The answer, or None after noting the service as unreachable."""
        try:
            response = client.get(path, headers=self.headers)
        except httpx.HTTPError as exc:
            report.unreachable.append(Unreachable(service, f"{type(exc).__name__}: {exc}"[:200]))
            return None
        if response.status_code >= 500 or response.status_code in (401, 403):
            reason = f"HTTP {response.status_code} from {path}"
            report.unreachable.append(Unreachable(service, reason))
            return None
        return response

    def _check_metrics(self, metrics: list[tuple[str, str]], report: PreflightReport) -> None:
        response = self._get(self.analyzer, ANALYZER, "/metric-definitions", report)
        if response is None:
            return
        defined = {m["name"] for m in response.json().get("metrics", [])}
        for where, name in metrics:
            if name not in defined:
                report.missing.append(
                    Missing(
                        where,
                        name,
                        f"{where}: no metric {name!r} in the analyzer; define it first "
                        "(POST /metrics, `splitlab metrics create`)",
                    )
                )

    def _check_models(self, models: list[tuple[str, str]], report: PreflightReport) -> None:
        for where, ref in models:
            model, sep, version = ref.partition(":")
            if not sep or not model or not version:
                report.missing.append(
                    Missing(where, ref, f"{where}: {ref!r} is not a name:version reference")
                )
                continue
            response = self._get(self.router, ROUTER, f"/models/{model}/{version}", report)
            if response is None:
                return  # the router cannot say: one note is enough
            if response.status_code == 404:
                report.missing.append(
                    Missing(
                        where,
                        ref,
                        f"{where}: no model {ref!r} in the router's registry; register it "
                        "first (POST /models, `splitlab models register`)",
                    )
                )


def report_body(report: PreflightReport) -> dict[str, Any]:
    return {
        "missing": [vars(m) for m in report.missing],
        "unreachable": [vars(u) for u in report.unreachable],
    }


class PreflightRefusedError(InvalidInputError):
    """``start`` refused: something the experiment names is missing (422). The body lists each
    (``error.missing``), and ``error.field`` names the first."""

    def __init__(self, key: str, report: PreflightReport) -> None:
        super().__init__(
            f"cannot start {key!r}: {report.describe()}; fix these, or start anyway with "
            "force=true (`splitlab experiments start KEY --force`)",
            field=report.missing[0].field,
        )
        self.report = report

    def to_body(self) -> dict[str, Any]:
        body = super().to_body()
        body["error"].update(report_body(self.report))
        return body


class PreflightUnavailableError(DependencyUnavailableError):
    """``start`` refused: the analyzer or the router could not be asked (503 naming it)."""

    def __init__(self, key: str, report: PreflightReport) -> None:
        names = " and ".join(u.service for u in report.unreachable)
        super().__init__(
            f"cannot start {key!r}: the pre-flight check could not ask the {names}: "
            f"{report.describe()}; retry when it answers, or start anyway with force=true",
            field=report.unreachable[0].service,
        )
        self.report = report

    def to_body(self) -> dict[str, Any]:
        body = super().to_body()
        body["error"].update(report_body(self.report))
        return body
