"""Refreshing results and acting on them: cache, gauges, guardrail and SRM automation.

Automation runs only from the periodic refresh (``refresh_running``, the scheduled loop): a
results read computes and caches, a manual ``POST .../refresh`` (admin) also replaces the
gauges, and neither flags nor pauses anything.

After every periodic refresh of a running experiment: the gauges are replaced; if a guardrail is
violated (one-sided always-valid test) or SRM is detected, the experiment is *flagged* (a row
in ``analyzer_actions`` with the evidence, the ``splitlab_experiment_*`` gauges for alerting),
and, when the experiment has ``auto_stop``, it is paused through the assignment service's API
(with the analyzer's own key, ``SPLITLAB_ANALYZER_API_KEY``, so the registry's audit log names
the analyzer; see ``assignment_client``), and
the pause and its evidence are recorded in ``analyzer_actions``. A flag is recorded once per
reason while the experiment keeps violating (not at every refresh).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from splitlab_analyzer import gauges
from splitlab_analyzer.assignment_client import AssignmentClient
from splitlab_analyzer.repositories import ActionRepository
from splitlab_analyzer.results.cache import ResultsCache
from splitlab_analyzer.results.service import Computed, ResultsService

logger = logging.getLogger(__name__)

DEFAULT_METHOD = "auto"
KEEP_ROLLUPS = ("running", "paused")
"""Experiment statuses whose stored rollups the periodic refresh keeps."""


@dataclass
class Automation:
    results: ResultsService
    cache: ResultsCache
    actions: ActionRepository
    assignment: AssignmentClient
    flagged: dict[str, set[str]] = field(default_factory=dict)
    """Reasons already recorded per experiment (so a flag is written once)."""

    def results_for(self, key: str, method: str, sequential: bool) -> dict[str, Any]:
        """Cached results, computing (and caching) them on a miss; no side effect beyond the
        cache (no gauges, no flags, no pause: those belong to the periodic refresh)."""
        cached = self.cache.get(key, method, sequential)
        if cached is not None:
            return cached
        computed = self.results.compute(key, method, sequential)
        self.cache.put(key, method, sequential, computed.body)
        return computed.body

    def refresh(self, key: str, *, act: bool = True) -> dict[str, Any]:
        """Recompute now (default method, both horizons), replace the cache and the gauges,
        and (``act``, the periodic refresh) flag and pause on guardrails and SRM; the manual
        ``POST .../refresh`` passes ``act=False``.

        First the experiment's per-unit rollups are built if its metric definitions ask for
        slots that are not stored yet, and every stored rollup is caught up on the units
        written since the last catch-up (see :mod:`splitlab_analyzer.rollups`).
        """
        self.cache.invalidate(key)
        self.results.build_rollups(key)
        self.results.rollups.catch_up()
        computed = self.results.compute(key, DEFAULT_METHOD, sequential=False)
        self.cache.put(key, DEFAULT_METHOD, False, computed.body)
        sequential = self.results.compute(key, DEFAULT_METHOD, sequential=True)
        self.cache.put(key, DEFAULT_METHOD, True, sequential.body)
        if act:
            self.act_on(computed)
        else:
            self.export(computed)
        return computed.body

    def refresh_running(self) -> int:
        """One periodic pass over every running experiment; returns how many were refreshed."""
        done = 0
        running = {e.key for e in self.results.experiments.running()}
        for key in gauges.exported_experiments() - running:
            gauges.forget(key)
        for key in set(self.results.rollups.keys()) - running:
            info = self.results.experiments.get(key)
            if info is None or info.status not in KEEP_ROLLUPS:
                self.results.rollups.drop(key)  # ingestion stops maintaining it
        for key in sorted(running):
            try:
                self.refresh(key)
                done += 1
            except Exception:
                logger.exception("refresh failed", extra={"experiment": key})
        return done

    def export(self, computed: Computed) -> None:
        """Replace the experiment's gauges with these results."""
        gauges.export(
            computed.experiment.key,
            computed.body["sample"]["units"],
            computed.result,
            computed.monitoring,
            computed.guardrails,
        )

    def act_on(self, computed: Computed) -> None:
        """Export the gauges, flag violations once, pause an ``auto_stop`` experiment."""
        info = computed.experiment
        gauges.export(
            info.key,
            computed.body["sample"]["units"],
            computed.result,
            computed.monitoring,
            computed.guardrails,
        )
        reasons: dict[str, dict[str, Any]] = {}
        violated = [g for g in computed.guardrails if g.violated]
        if violated:
            reasons["guardrail_violated"] = {
                "guardrails": [g.to_dict() for g in violated],
                "units": computed.body["sample"]["units"],
            }
        if computed.result.srm.mismatch:
            reasons["srm"] = {"srm": computed.body["srm"]}
        seen = self.flagged.setdefault(info.key, set())
        for reason, evidence in reasons.items():
            if reason not in seen:
                self.actions.record(info.key, "flag", reason, evidence, "flagged")
                seen.add(reason)
                logger.warning(
                    "experiment flagged", extra={"experiment": info.key, "reason": reason}
                )
        if reasons and info.auto_stop and info.status == "running":
            outcome = self.assignment.pause(info.key)
            self.actions.record(
                info.key,
                "pause",
                ", ".join(sorted(reasons)),
                {**reasons, "response": {"status": outcome.status_code, "detail": outcome.detail}},
                "paused" if outcome.ok else f"failed: {outcome.detail[:200]}",
            )
            logger.warning(
                "experiment paused" if outcome.ok else "pausing the experiment failed",
                extra={"experiment": info.key, "reasons": sorted(reasons)},
            )
