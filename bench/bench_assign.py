"""``/assign`` end to end against a trivial FastAPI endpoint, in the same run.

Both apps run under uvicorn with the same settings (one worker, ``--no-access-log``, loopback)
and are driven by the same load generator: ``wrk`` (closed loop, a Lua script POSTing bodies
over a million unit ids) for the maximum throughput, then ``vegeta`` (open loop at a constant
rate; built into ``.stack/bin`` with ``go install``; ``rate_client.py`` when Go is missing) at
half the measured maximum of ``/assign`` for p50/p99 latency, against ``/assign`` and then the
trivial endpoint at the same rate. The assignment
service runs against the real stack: Postgres registry, sticky Redis (a database of its own,
flushed before and after) and the Kafka exposure publisher. The issue's targets: throughput at
least 60% of the trivial endpoint's, p99 under 10 ms at half the maximum rate.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import redis
from harness import BenchResult

from splitlab.settings import load_settings
from splitlab.storage.migrate import upgrade

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
_SCALE = float(os.environ.get("BENCH_ASSIGN_SCALE", "1"))  # < 1 for a quick smoke run
WARMUP_S = max(1, round(3 * _SCALE))
MAX_RATE_S = max(1, round(10 * _SCALE))
LATENCY_S = max(1, round(10 * _SCALE))
CONNECTIONS = 32
REDIS_DB = 12
ADMIN_KEY = "bench-admin-key"
VEGETA = "github.com/tsenart/vegeta/v12@v12.13.0"

LUA = """
counter = 0
request = function()
  counter = counter + 1
  local unit = math.random(1, 1000000)
  local body = '{"unit_id":"unit-' .. unit .. '","experiment_key":"%s"}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/openapi.json", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not start in {timeout}s")


@contextmanager
def _uvicorn(app: str, env: dict[str, str], factory: bool, log: Path) -> Iterator[str]:
    port = _free_port()
    args = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--no-access-log", "--log-level", "warning"]  # fmt: skip
    if factory:
        args.append("--factory")
    with log.open("wb") as out:
        process = subprocess.Popen(args, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wrk(url: str, script: Path, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(script),
         f"{url}/assign"],
        capture_output=True, text=True, check=True, timeout=seconds + 30,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": rps,
        "non_2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": float(sum(int(g) for g in errors.groups())) if errors else 0.0,
    }


def _rate(url: str, rate: float, experiment: str) -> dict[str, float]:
    """Open-loop latency at ``rate``: vegeta when it can be had, else ``rate_client.py``."""
    vegeta = _ensure_vegeta()
    if vegeta is not None:
        return _vegeta(vegeta, url, rate, experiment)
    out = subprocess.run(
        [sys.executable, str(BENCH_DIR / "rate_client.py"), f"{url}/assign", "--rate",
         f"{rate:.0f}", "--duration", str(LATENCY_S), "--experiment", experiment],
        capture_output=True, text=True, check=True, timeout=LATENCY_S + 120,
    ).stdout  # fmt: skip
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    result["tool"] = 0.0
    return result


def _ensure_vegeta() -> Path | None:
    """vegeta (Go, open loop at a constant rate, a few % of a core where the Python client took
    a third), built once into ``.stack/bin`` with ``go install`` when Go is present."""
    target = REPO / ".stack" / "bin" / "vegeta"
    if target.exists():
        return target
    if shutil.which("go") is None:
        return None
    env = {**os.environ, "GOBIN": str(target.parent)}
    try:
        subprocess.run(["go", "install", VEGETA], env=env, capture_output=True, check=True,
                       timeout=600)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return target if target.exists() else None


def _vegeta(vegeta: Path, url: str, rate: float, experiment: str) -> dict[str, float]:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="splitlab-vegeta-") as folder:
        targets = Path(folder) / "targets.jsonl"
        with targets.open("w") as out:
            for _ in range(int(rate * LATENCY_S)):
                body = json.dumps({"unit_id": f"unit-{rng.randrange(1_000_000)}",
                                   "experiment_key": experiment}).encode()  # fmt: skip
                target = {"method": "POST", "url": f"{url}/assign",
                          "header": {"Content-Type": ["application/json"]},
                          "body": base64.b64encode(body).decode()}  # fmt: skip
                out.write(json.dumps(target) + "\n")
        results = Path(folder) / "results.bin"
        subprocess.run(
            [str(vegeta), "attack", "-format=json", f"-targets={targets}", f"-rate={rate:.0f}/s",
             f"-duration={LATENCY_S}s", "-timeout=10s", f"-output={results}"],
            check=True, capture_output=True, timeout=LATENCY_S + 60,
        )  # fmt: skip
        command = [str(vegeta), "report", "-type=json", str(results)]
        report = json.loads(subprocess.run(command, check=True, capture_output=True).stdout)
    latencies = report["latencies"]
    requests = float(report["requests"])
    return {
        "requests": requests,
        "errors": requests - float(report["status_codes"].get("200", 0)),
        "achieved_rate_per_s": float(report["throughput"]),
        "p50_ms": latencies["50th"] / 1e6,
        "p90_ms": latencies["90th"] / 1e6,
        "p99_ms": latencies["99th"] / 1e6,
        "max_ms": latencies["max"] / 1e6,
        "tool": 1.0,
    }


def _ensure_wrk() -> str | None:
    if shutil.which("wrk"):
        return None
    try:
        subprocess.run(["apt-get", "install", "-y", "wrk"], capture_output=True, check=True,
                       timeout=300)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        return f"wrk is not installed and `apt-get install -y wrk` failed ({exc})"
    return None if shutil.which("wrk") else "wrk is not installed"


def run() -> list[BenchResult]:
    problem = _ensure_wrk()
    if problem:
        return [BenchResult("assign.throughput", {}, "assign >= 0.60 x trivial", None, problem)]
    settings = load_settings()
    upgrade(settings.database_url)
    redis_url = settings.redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    sticky = redis.Redis.from_url(redis_url)
    sticky.flushdb()
    experiment = f"bench-{uuid.uuid4().hex[:8]}"
    workdir = Path(tempfile.mkdtemp(prefix="splitlab-bench-assign-"))
    env = {
        **os.environ,
        "SPLITLAB_ACCESS_LOG": "false",
        "SPLITLAB_LOG_LEVEL": "WARNING",
        "SPLITLAB_REDIS_URL": redis_url,
        "SPLITLAB_ADMIN_API_KEY": ADMIN_KEY,
        "SPLITLAB_STATE_DIR": str(workdir / "state"),
        "PYTHONPATH": str(BENCH_DIR),
    }
    script = workdir / "assign.lua"
    script.write_text(LUA % experiment)
    try:
        with _uvicorn("trivial_app:app", env, False, workdir / "trivial.log") as trivial:
            _wrk(trivial, script, WARMUP_S)
            baseline = _wrk(trivial, script, MAX_RATE_S)
        factory = "splitlab_assignment.app:create_app"
        with _uvicorn(factory, env, True, workdir / "assignment.log") as service:
            headers = {"Authorization": f"Bearer {ADMIN_KEY}", "X-SplitLab-Actor": "bench"}
            body = {
                "key": experiment,
                "name": "benchmark",
                "variants": [
                    {"key": "control", "weight": 0.5},
                    {"key": "treatment", "weight": 0.5},
                ],
                "metrics": {"primary": "conversion"},
            }
            httpx.post(f"{service}/experiments", json=body, headers=headers).raise_for_status()
            httpx.post(
                f"{service}/experiments/{experiment}/start", headers=headers
            ).raise_for_status()
            _wrk(service, script, WARMUP_S)
            measured = _wrk(service, script, MAX_RATE_S)
            half = measured["rps"] / 2
            latency = _rate(service, half, experiment)
            sample = httpx.post(
                f"{service}/assign", json={"unit_id": "unit-1", "experiment_key": experiment}
            ).json()
            httpx.post(f"{service}/experiments/{experiment}/stop", headers=headers)
            httpx.post(f"{service}/experiments/{experiment}/archive", headers=headers)
        sticky_hashes = sticky.dbsize()
        # The same rate against the trivial endpoint: what this machine and load generator
        # give at that rate with none of SplitLab's work (context for the p99).
        with _uvicorn("trivial_app:app", env, False, workdir / "trivial-latency.log") as trivial:
            _wrk(trivial, script, WARMUP_S)
            trivial_latency = _rate(trivial, half, experiment)
    finally:
        sticky.flushdb()
        sticky.close()
    ratio = measured["rps"] / baseline["rps"]
    context = {
        "server": "uvicorn, 1 worker, --no-access-log, SPLITLAB_ACCESS_LOG=false, 127.0.0.1",
        "load": f"wrk -t1 -c{CONNECTIONS} {MAX_RATE_S}s after {WARMUP_S}s warm-up; POST bodies "
        "over 1,000,000 random unit ids; a fresh experiment (allocation_epoch 0: answers from "
        "hashing, sticky records claimed in the background)",
        "sticky_hashes_written": sticky_hashes,
        "sample_answer": sample,
        "assign_errors": measured["non_2xx"] + measured["socket_errors"],
        "machine": "2 cores shared with other engineers' processes; load generator on the "
        "same machine",
    }
    return [
        BenchResult(
            "assign.throughput",
            {
                "assign_per_s": measured["rps"],
                "trivial_per_s": baseline["rps"],
                "ratio": ratio,
            },
            "assign_per_s >= 0.60 x trivial_per_s",
            ratio >= 0.60,
            context=context,
        ),
        BenchResult(
            "assign.latency_at_half_max",
            {
                "rate_per_s": half,
                "achieved_per_s": latency["achieved_rate_per_s"],
                "p50_ms": latency["p50_ms"],
                "p99_ms": latency["p99_ms"],
                "max_ms": latency["max_ms"],
                "errors": latency["errors"],
                "trivial_p50_ms": trivial_latency["p50_ms"],
                "trivial_p99_ms": trivial_latency["p99_ms"],
            },
            "p99_ms < 10 at half of the measured maximum rate",
            latency["p99_ms"] < 10 and latency["errors"] == 0,
            notes=(
                f"open-loop constant rate for {LATENCY_S}s with "
                + (
                    "vegeta (own process; latency from each request's send)"
                    if latency["tool"]
                    else "bench/rate_client.py (own process; latency from each due time)"
                )
                + "; trivial_*: the trivial endpoint at the same rate, same tool"
            ),
        ),
    ]
