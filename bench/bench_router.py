"""``/predict`` end to end against the same model called directly in a trivial FastAPI endpoint,
in the same run; and the router with Kafka event logging against the router without it.

All three apps run under uvicorn (one worker, no access log, loopback) on the real stack
(Postgres registry, sticky Redis in a database of its own, Kafka). Latency: one keep-alive
connection, sequential requests (p50/p99 of each; the router's overhead is its p50 minus the
trivial endpoint's). Throughput: ``wrk`` with 32 connections. The three apps run at once and
take turns over three rounds of both measures; the medians are compared. Targets (issue 5):
overhead at p50 under 2 ms; throughput with logging at least 80% of the router without logging.

The remote-model case (``run_remote``, also run by ``run``): the same model behind a model
server of its own (``model_server_app``, KServe's shape), once keeping connections alive and
once closing each; ``/predict`` through a router whose experiments name those servers (flavor
``http``) against calling the servers directly with the same body, sequentially on one
keep-alive connection of the caller, in the same run. Target (issue 13): the router's p50 minus
the direct p50 under 1 ms. ``python bench/bench_router.py remote`` runs only this part.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import redis
from bench_assign import _ensure_wrk, _uvicorn
from harness import BenchResult, percentile
from sqlalchemy import create_engine, text

from splitlab.platform.settings import load_settings
from splitlab.platform.storage.migrate import upgrade

BENCH_DIR = Path(__file__).resolve().parent
_SCALE = float(os.environ.get("BENCH_ROUTER_SCALE", "1"))
LATENCY_N = max(200, round(1000 * _SCALE))
WRK_S = max(2, round(5 * _SCALE))
ROUNDS = 3
CONNECTIONS = 32
REDIS_DB = 11
ADMIN_KEY = "bench-admin-key"
LUA = """
request = function()
  local unit = math.random(1, 1000000)
  local body = '{"unit_id":"unit-' .. unit .. '","experiment_key":"%s",'
    .. '"features":{"x1":0.3,"x2":-1.2}}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
"""


def _latency(url: str, experiment: str) -> dict[str, float]:
    timings = []
    with httpx.Client() as client:
        for i in range(LATENCY_N + 100):
            body = {"unit_id": f"lat-{i}", "experiment_key": experiment,
                    "features": {"x1": 0.3, "x2": -1.2}}  # fmt: skip
            start = time.perf_counter()
            client.post(f"{url}/predict", json=body).raise_for_status()
            if i >= 100:
                timings.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": percentile(timings, 50), "p99_ms": percentile(timings, 99)}


def _wrk(url: str, script: Path) -> dict[str, float]:
    import re
    import subprocess

    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{WRK_S}s", "-s", str(script), f"{url}/predict"],
        capture_output=True, text=True, check=True, timeout=WRK_S + 30,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "errors": float(non2xx.group(1)) if non2xx else 0.0}


def _wait_serving(url: str, experiment: str) -> None:
    body = {"unit_id": "u", "experiment_key": experiment, "features": {"x1": 0.3, "x2": -1.2}}
    deadline = time.monotonic() + 30
    while httpx.post(f"{url}/predict", json=body).status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError("the router never served the benchmark experiment")
        time.sleep(0.2)


def _experiment(database_url: str, key: str, model: str) -> None:
    engine = create_engine(database_url)
    now = datetime.now(UTC)
    variants = [{"key": "control", "weight": 0.5, "model": model},
                {"key": "treatment", "weight": 0.5, "model": model}]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO experiments (key, name, hypothesis, owner, status, variants, "
                "coverage, hash_version, hash_attribute, metrics, alpha, power, auto_stop, "
                "bucket_version, min_bucket_version, version, created_at, updated_at, "
                "started_at) VALUES (:key, 'router benchmark', '', 'bench', 'running', "
                "CAST(:variants AS JSONB), 1.0, 2, 'id', CAST(:metrics AS JSONB), 0.05, 0.8, "
                "false, 0, 0, 1, :now, :now, :now)"
            ),
            {"key": key, "variants": json.dumps(variants),
             "metrics": json.dumps({"primary": "conversion"}), "now": now},
        )  # fmt: skip
    engine.dispose()


def _drop_experiment(database_url: str, key: str, model_name: str) -> None:
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM experiments WHERE key = :k"), {"k": key})
        connection.execute(text("DELETE FROM models WHERE name = :n"), {"n": model_name})
    engine.dispose()


REMOTE_N = max(200, round(600 * _SCALE))
REMOTE_BODY = {"instances": [{"x1": 0.3, "x2": -1.2}]}


def _latency_direct(url: str) -> dict[str, float]:
    """The model server called directly: the router's body, one client, sequential."""
    timings = []
    with httpx.Client() as client:
        for i in range(REMOTE_N + 100):
            start = time.perf_counter()
            client.post(url, json=REMOTE_BODY).raise_for_status()
            if i >= 100:
                timings.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": percentile(timings, 50), "p99_ms": percentile(timings, 99)}


def _latency_routed(url: str, experiment: str) -> dict[str, float]:
    timings = []
    with httpx.Client() as client:
        for i in range(REMOTE_N + 100):
            body = {"unit_id": f"remote-{i}", "experiment_key": experiment,
                    "features": REMOTE_BODY["instances"][0]}  # fmt: skip
            start = time.perf_counter()
            answer = client.post(f"{url}/predict", json=body)
            answer.raise_for_status()
            if i >= 100:
                timings.append((time.perf_counter() - start) * 1000)
    assert answer.json()["fallback"] is False, answer.text
    return {"p50_ms": percentile(timings, 50), "p99_ms": percentile(timings, 99)}


def run_remote() -> list[BenchResult]:
    """``/predict`` to a remote (http) model against calling its server directly."""
    import skops.io
    from sklearn.linear_model import LogisticRegression

    settings = load_settings()
    upgrade(settings.database_url)
    workdir = Path(tempfile.mkdtemp(prefix="splitlab-bench-remote-"))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 2))
    model_path = workdir / "m.skops"
    skops.io.dump(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), model_path)
    redis_url = settings.redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    sticky = redis.Redis.from_url(redis_url)
    sticky.flushdb()
    tag = uuid.uuid4().hex[:8]
    model_name = f"bench-remote-{tag}"
    env = {
        **os.environ,
        "SPLITLAB_ACCESS_LOG": "false",
        "SPLITLAB_LOG_LEVEL": "WARNING",
        "SPLITLAB_REDIS_URL": redis_url,
        "SPLITLAB_ADMIN_API_KEY": ADMIN_KEY,
        "SPLITLAB_STATE_DIR": str(workdir / "state"),
        "SPLITLAB_EXPERIMENT_CACHE_REFRESH_SECONDS": "0.5",
        "BENCH_MODEL_PATH": str(model_path),
        "PYTHONPATH": str(BENCH_DIR),
    }
    servers = {"keepalive": "0", "close": "1"}
    experiments = {kind: f"bench-remote-{kind}-{tag}" for kind in servers}
    rounds: dict[str, list[dict[str, float]]] = {
        f"{side}_{kind}": [] for kind in servers for side in ("direct", "router")
    }
    try:
        with ExitStack() as running:
            model_urls = {
                kind: running.enter_context(
                    _uvicorn(
                        "model_server_app:app",
                        {**env, "BENCH_CLOSE_CONNECTIONS": close},
                        False,
                        workdir / f"model-{kind}",
                    )
                )
                + "/v1/models/m:predict"
                for kind, close in servers.items()
            }
            router = running.enter_context(
                _uvicorn("splitlab_router.app:create_app", env, True, workdir / "router")
            )
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
            for kind, url in model_urls.items():
                httpx.post(f"{router}/models", headers=admin, timeout=60, json={
                    "name": model_name, "version": kind, "flavor": "http", "url": url,
                    "input_schema": [{"name": "x1"}, {"name": "x2"}]},
                ).raise_for_status()  # fmt: skip
                _experiment(settings.database_url, experiments[kind], f"{model_name}:{kind}")
                _wait_serving(router, experiments[kind])
            order = list(rounds)
            for round_ in range(ROUNDS):
                for name in order if round_ % 2 == 0 else order[::-1]:
                    side, kind = name.split("_", 1)
                    rounds[name].append(
                        _latency_direct(model_urls[kind])
                        if side == "direct"
                        else _latency_routed(router, experiments[kind])
                    )
    finally:
        for key in experiments.values():
            _drop_experiment(settings.database_url, key, model_name)
        sticky.flushdb()
        sticky.close()
    medians = {
        name: {figure: statistics.median(r[figure] for r in taken) for figure in taken[0]}
        for name, taken in rounds.items()
    }
    context = {
        "server": "uvicorn, 1 worker, no access log, 127.0.0.1 (router and model servers)",
        "model": "LogisticRegression on 2 features behind a FastAPI model server (KServe V1)",
        "latency": f"{REMOTE_N} sequential requests on one keep-alive connection, after 100",
        "rounds": f"{ROUNDS} rounds against each, order reversed every other round; medians",
        "rounds_p50_ms": {name: [r["p50_ms"] for r in taken] for name, taken in rounds.items()},
        "machine": "2 cores shared with other engineers' processes; client on the same machine",
    }
    results = []
    for kind in servers:
        direct, routed = medians[f"direct_{kind}"], medians[f"router_{kind}"]
        overhead = routed["p50_ms"] - direct["p50_ms"]
        results.append(
            BenchResult(
                f"router.remote_model_{kind}",
                {
                    "router_p50_ms": routed["p50_ms"],
                    "router_p99_ms": routed["p99_ms"],
                    "direct_p50_ms": direct["p50_ms"],
                    "direct_p99_ms": direct["p99_ms"],
                    "overhead_p50_ms": overhead,
                },
                "overhead_p50_ms < 1",
                overhead < 1,
                context=context,
            )
        )
    return results


def run() -> list[BenchResult]:
    return [*run_local(), *run_remote()]


def run_local() -> list[BenchResult]:
    """``/predict`` with an in-process scikit-learn model, and the cost of event logging."""
    import skops.io
    from sklearn.linear_model import LogisticRegression

    problem = _ensure_wrk()
    if problem:
        return [BenchResult("router.overhead", {}, "overhead p50 < 2 ms", None, problem)]
    settings = load_settings()
    upgrade(settings.database_url)
    workdir = Path(tempfile.mkdtemp(prefix="splitlab-bench-router-"))
    store = workdir / "state" / "models"
    store.mkdir(parents=True)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 2))
    skops.io.dump(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), store / "m.skops")
    redis_url = settings.redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    sticky = redis.Redis.from_url(redis_url)
    sticky.flushdb()
    experiment = f"bench-router-{uuid.uuid4().hex[:8]}"
    model_name = f"bench-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "SPLITLAB_ACCESS_LOG": "false",
        "SPLITLAB_LOG_LEVEL": "WARNING",
        "SPLITLAB_REDIS_URL": redis_url,
        "SPLITLAB_ADMIN_API_KEY": ADMIN_KEY,
        "SPLITLAB_STATE_DIR": str(workdir / "state"),
        "SPLITLAB_EXPERIMENT_CACHE_REFRESH_SECONDS": "0.5",
        "BENCH_MODEL_PATH": str(store / "m.skops"),
        "PYTHONPATH": str(BENCH_DIR),
    }
    script = workdir / "predict.lua"
    script.write_text(LUA % experiment)
    factory = "splitlab_router.app:create_app"
    apps = {
        "trivial": ("trivial_model_app:app", False, env),
        "router": (factory, True, {**env, "SPLITLAB_ROUTER_EVENT_LOGGING": "true"}),
        "router_no_logging": (factory, True, {**env, "SPLITLAB_ROUTER_EVENT_LOGGING": "false"}),
    }
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in apps}
    try:
        with ExitStack() as running:
            urls = {
                name: running.enter_context(_uvicorn(app, app_env, is_factory, workdir / name))
                for name, (app, is_factory, app_env) in apps.items()
            }
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
            httpx.post(f"{urls['router']}/models", headers=admin, timeout=120, json={
                "name": model_name, "version": "1", "flavor": "sklearn", "artifact": "m.skops",
                "input_schema": [{"name": "x1"}, {"name": "x2"}]},
            ).raise_for_status()  # fmt: skip
            _experiment(settings.database_url, experiment, f"{model_name}:1")
            for name in ("router", "router_no_logging"):
                _wait_serving(urls[name], experiment)
            # All three run at once and take turns, the order reversed every other round: a
            # drift in what the machine gives falls on every side of the comparisons.
            order = list(apps)
            for round_ in range(ROUNDS):
                for name in order if round_ % 2 == 0 else order[::-1]:
                    url = urls[name]
                    rounds[name].append({**_latency(url, experiment), **_wrk(url, script)})
    finally:
        _drop_experiment(settings.database_url, experiment, model_name)
        sticky.flushdb()
        sticky.close()
    results = {
        name: {figure: statistics.median(r[figure] for r in taken) for figure in taken[0]}
        for name, taken in rounds.items()
    }
    trivial, routed, bare = results["trivial"], results["router"], results["router_no_logging"]
    overhead = routed["p50_ms"] - trivial["p50_ms"]
    ratio = routed["rps"] / bare["rps"]
    context = {
        "server": "uvicorn, 1 worker, no access log, 127.0.0.1",
        "model": "LogisticRegression on 2 features, skops file; predict_proba per request",
        "latency": f"{LATENCY_N} sequential requests on one keep-alive connection, after 100",
        "throughput": f"wrk -t1 -c{CONNECTIONS} {WRK_S}s, 1,000,000 random unit ids",
        "rounds": f"{ROUNDS} rounds of each measure against each app, medians compared",
        "rounds_per_s": {name: [r["rps"] for r in taken] for name, taken in rounds.items()},
        "rounds_p50_ms": {name: [r["p50_ms"] for r in taken] for name, taken in rounds.items()},
        "errors": {name: sum(r["errors"] for r in taken) for name, taken in rounds.items()},
        "machine": "2 cores shared with other engineers' processes; load generator on the "
        "same machine",
    }
    return [
        BenchResult(
            "router.predict_latency",
            {
                "router_p50_ms": routed["p50_ms"],
                "router_p99_ms": routed["p99_ms"],
                "trivial_p50_ms": trivial["p50_ms"],
                "trivial_p99_ms": trivial["p99_ms"],
                "overhead_p50_ms": overhead,
            },
            "overhead_p50_ms < 2",
            overhead < 2,
            context=context,
        ),
        BenchResult(
            "router.predict_throughput",
            {
                "router_per_s": routed["rps"],
                "router_no_logging_per_s": bare["rps"],
                "trivial_per_s": trivial["rps"],
                "logging_ratio": ratio,
            },
            "router_per_s >= 0.80 x router_no_logging_per_s",
            ratio >= 0.80,
        ),
    ]


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(BENCH_DIR))
    parts = {"remote": run_remote, "local": run_local}
    for result in parts[sys.argv[1]]() if len(sys.argv) > 1 else run():
        print(json.dumps(result.to_dict(), indent=2))
