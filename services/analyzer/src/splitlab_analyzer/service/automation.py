"""Refreshing results and acting on them: cache, gauges, guardrail and SRM automation.

Automation runs only from the scheduled passes (``refresh_running`` and ``check_guardrails``):
a results read computes and caches, a manual ``POST .../refresh`` (admin) also replaces the
gauges, and neither flags nor pauses anything.

After every periodic refresh of a running or paused experiment: the gauges are replaced; if a
guardrail is violated (one-sided always-valid test) or SRM is detected, the experiment is
*flagged* (a row in ``analyzer_actions`` with the evidence, the ``splitlab_experiment_*`` gauges
for alerting), and, when the experiment has ``auto_stop``, it is paused through the assignment
service's API (with the analyzer's own key, ``SPLITLAB_ANALYZER_API_KEY``, so the registry's
audit log names the analyzer; see ``assignment_client``), and the pause and its evidence are
recorded in ``analyzer_actions``. A flag is recorded once per
reason while the experiment keeps violating (not at every refresh).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from splitlab.core.stats.adjustment import Method
from splitlab.platform.errors import NotFoundError
from splitlab_analyzer import telemetry
from splitlab_analyzer.assignment_client import AssignmentClient
from splitlab_analyzer.repository import ActionRepository, ExperimentInfo
from splitlab_analyzer.results.cache import ResultsCache
from splitlab_analyzer.results.repository import HistoryRepository
from splitlab_analyzer.results.service import NoExposuresError, Results, ResultsService

logger = logging.getLogger(__name__)

DEFAULT_METHOD: Method = "auto"
ACTIVE = ("running", "paused")
"""Experiment statuses the full pass refreshes and exports (a paused one stays exported until
a person resumes or stops it) and whose stored rollups it keeps."""


@dataclass
class Automation:
    results: ResultsService
    cache: ResultsCache
    actions: ActionRepository
    assignment: AssignmentClient
    history: HistoryRepository
    flagged: dict[str, set[str]] = field(default_factory=dict)
    """Reasons already recorded per experiment (so a flag is written once)."""

    def results_for(self, key: str, method: Method, sequential: bool) -> dict[str, Any]:
        """Cached results, computing them on a miss (one snapshot, both horizons cached); no
        side effect beyond the cache (no gauges, no flags, no pause: those belong to the
        periodic refresh)."""
        cached = self.cache.get(key, method, sequential)
        if cached is not None:
            return cached
        results = self.results.compute(key, method)
        self.cache_both(key, results)
        return results.bodies[sequential]

    def cache_both(self, key: str, results: Results) -> None:
        for sequential, body in results.bodies.items():
            self.cache.put(key, results.method, sequential, body)

    def refresh(self, key: str, *, act: bool = True) -> dict[str, Any]:
        """:meth:`recompute`'s fixed-horizon body (what ``POST .../refresh`` answers)."""
        return self.recompute(key, act=act).body

    def recompute(self, key: str, *, act: bool = True) -> Results:
        """Recompute now (default method, both horizons from one snapshot), replace the cache
        and the gauges, and (``act``, the periodic refresh) flag and pause on guardrails and
        SRM; the manual ``POST .../refresh`` passes ``act=False``.

        First the experiment's per-unit rollups are built if its metric definitions ask for
        slots that are not stored yet, and every stored rollup is caught up on the units
        written since the last catch-up (see :mod:`splitlab_analyzer.rollups`; one
        experiment's failing catch-up does not stop the others').
        """
        self.cache.invalidate(key)
        results = self.results.compute(key, DEFAULT_METHOD, maintain=True)
        self.cache_both(key, results)
        if act:
            self.act_on(results)
            telemetry.analysed(key, "full", time.time())
        else:
            self.export(results, self.paused_by_analyzer(results.experiment))
        return results

    def refresh_running(self) -> int:
        """One periodic pass over every running or paused experiment; returns how many were
        refreshed. Each experiment is on its own: a failure is logged, counted
        (``splitlab_analyzer_refresh_failures_total``) and the pass goes on."""
        done = 0
        active = {e.key for e in self.results.experiments.with_status(*ACTIVE)}
        for key in telemetry.exported_experiments() - active:
            telemetry.forget(key)
        for key in sorted(set(self.results.rollups.keys()) - active):
            try:
                info = self.results.experiments.get(key)
                if info is None or info.status not in ACTIVE:
                    self.results.rollups.drop(key)  # ingestion stops maintaining it
            except Exception:
                logger.exception("dropping rollups failed", extra={"experiment": key})
        for key in sorted(active):
            telemetry.track(key, "full")
        for key in sorted(active):
            try:
                self.refresh(key)
                done += 1
            except NoExposuresError:
                # Started, nothing exposed yet: evaluated, with nothing to judge (a failure
                # here raised SplitLabAnalysisFailing for every experiment just started).
                telemetry.analysed(key, "full", time.time())
            except Exception:
                telemetry.failed(key, "full")
                logger.exception("refresh failed", extra={"experiment": key})
        telemetry.pass_completed("full", time.time())
        return done

    def snapshot_pass(self) -> int:
        """The scheduled snapshot (``analyzer_history_interval_seconds``): refresh every
        running or paused experiment and store its results in the history; then a final
        snapshot of every stopped experiment that has a history but none taken at its stop.
        Returns how many snapshots were stored; one experiment's failure is logged and the
        pass goes on."""
        stored = 0
        active = sorted(e.key for e in self.results.experiments.with_status(*ACTIVE))
        stopped = [e.key for e in self.results.experiments.with_status("stopped")]
        work = [(key, "refresh") for key in active]
        work += [(key, "stop") for key in self.history.stop_pending(stopped)]
        for key, reason in work:
            try:
                self.history.record(key, self.recompute(key), reason)
                stored += 1
            except NotFoundError:  # no exposures yet: nothing to snapshot
                logger.debug("no results to snapshot", extra={"experiment": key})
            except Exception:
                logger.exception("results snapshot failed", extra={"experiment": key})
        return stored

    def check_guardrails(self) -> int:
        """The guardrail pass (more often than the full refresh): for every running experiment
        with guardrails, compute only its guardrail metrics (from the same rollups), then flag
        and pause as the full refresh would. Returns how many were checked."""
        done = 0
        for info in sorted(self.results.experiments.running(), key=lambda e: e.key):
            if not info.guardrails:
                continue
            telemetry.track(info.key, "guardrails")
            try:
                results = self.results.compute(info, DEFAULT_METHOD, only=list(info.guardrails))
                self.act_on(results, full=False)
                telemetry.analysed(info.key, "guardrails", time.time())
                done += 1
            except NoExposuresError:
                telemetry.analysed(info.key, "guardrails", time.time())
            except Exception:
                telemetry.failed(info.key, "guardrails")
                logger.exception("guardrail check failed", extra={"experiment": info.key})
        telemetry.pass_completed("guardrails", time.time())
        return done

    def paused_by_analyzer(self, info: ExperimentInfo) -> bool:
        """Whether the experiment is paused and nobody changed it since the analyzer paused it
        (the registry's ``updated_at`` moves with every change a person makes)."""
        if info.status != "paused":
            return False
        paused_at = self.actions.last_pause(info.key)
        if paused_at is None:
            return False
        return info.updated_at is None or info.updated_at <= paused_at

    def act_on(self, results: Results, full: bool = True) -> None:
        """Flag and pause on the computed evidence, then export it (``full``: every gauge;
        else only the guardrail pass's)."""
        info = results.experiment
        reasons: dict[str, dict[str, Any]] = {}
        violated = results.violated
        if violated:
            reasons["guardrail_violated"] = {
                "guardrails": [g.to_dict() for g in violated],
                "units": dict(results.sample.units),
            }
        if results.srm_mismatch:
            reasons["srm"] = results.srm_evidence()
        flags = dict(reasons)
        if results.mostly_fell_back:
            flags["treatment_fallback"] = {
                "variants": results.mostly_fell_back,
                "fallback": {v: f.to_dict() for v, f in results.fallback.items()},
            }
        seen = self.flagged.setdefault(info.key, set())
        for reason, evidence in flags.items():
            if reason not in seen:
                self.actions.record(info.key, "flag", reason, evidence, "flagged")
                seen.add(reason)
                logger.warning(
                    "experiment flagged", extra={"experiment": info.key, "reason": reason}
                )
        paused = self.paused_by_analyzer(info)
        if reasons and info.auto_stop and info.status == "running":
            outcome = self.assignment.pause(info.key)
            self.actions.record(
                info.key,
                "pause",
                ", ".join(sorted(reasons)),
                {**reasons, "response": {"status": outcome.status_code, "detail": outcome.detail}},
                "paused" if outcome.ok else f"failed: {outcome.detail[:200]}",
            )
            paused = outcome.ok
            logger.warning(
                "experiment paused" if outcome.ok else "pausing the experiment failed",
                extra={"experiment": info.key, "reasons": sorted(reasons)},
            )
        if not full:
            plan = plan_of(results, paused)
            telemetry.export_guardrails(
                info.key, results.fixed, results.guardrails, paused, plan=plan
            )
            return
        self.export(results, paused)

    def export(self, results: Results, paused: bool) -> None:
        """Replace every gauge of the experiment with these results."""
        telemetry.export(
            results.experiment.key,
            results.sample.units,
            results.fixed,
            results.monitoring,
            results.guardrails,
            fallback={v: f.share for v, f in results.fallback.items()},
            mostly_fell_back=results.mostly_fell_back,
            paused_by_analyzer=paused,
            excluded=results.excluded_values,
            plan=plan_of(results, paused),
        )


def plan_of(results: Results, paused: bool) -> telemetry.Plan:
    """What the registry and the plan say of the experiment, for its info gauges (the
    registered primary metric also after the guardrail pass)."""
    info = results.snapshot.registered
    return telemetry.Plan(
        team=info.owner or "unowned",
        status="paused" if paused else info.status,
        primary=info.primary,
        control=info.control,
        power=info.power,
        planned_units=info.planned_sample_size,
        power_at_planned=results.sample.power_at_planned,
        started_at=None if info.started_at is None else info.started_at.timestamp(),
        days_to_planned=results.sample.days_to_planned,
    )
