"""Private Prometheus and Alertmanager (the stack's binaries and the project's configuration,
rewritten only where a test must differ) and a webhook receiver that records what arrives.

What the rewrite changes, and nothing else:
- Prometheus: ``scrape_interval`` and ``evaluation_interval`` 1 s (5 s in the project), file_sd
  target files of the test's services, the project's rule files as they are, its own
  Alertmanager, its own self-scrape port.
- Alertmanager: receivers' URLs point at the test's receiver (port 9099 in the project),
  ``group_wait`` 1 s and ``group_interval`` 2 s (30 s and 5 m in the project); routes,
  grouping keys and inhibitions as they are.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.support.kafka_broker import free_port
from tests.support.stack import REPO, system_tool

PROJECT_RECEIVER = "http://127.0.0.1:9099"


@dataclass
class Delivery:
    receiver: str
    """The last part of the webhook path: the Alertmanager receiver's name."""
    payload: dict[str, Any]


@dataclass
class WebhookReceiver:
    port: int
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alerts(self, receiver: str | None = None) -> list[dict[str, Any]]:
        """Every alert delivered (to ``receiver``), each with the receiver under ``_receiver``."""
        with self.lock:
            return [
                {**alert, "_receiver": d.receiver}
                for d in self.deliveries
                if receiver is None or d.receiver == receiver
                for alert in d.payload.get("alerts", [])
            ]


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                receiver.deliveries.append(
                    Delivery(self.path.rstrip("/").rsplit("/", 1)[-1], json.loads(body))
                )
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready in 60 s: {log.read_text()[-2000:]}")


@contextmanager
def _process(command: list[str], url: str, log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(url, process, log)
        yield
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def private_alertmanager(workdir: Path, receiver: WebhookReceiver) -> Iterator[str]:
    """The project's alertmanager.yml with the receivers at ``receiver``; yields its URL."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = (REPO / "infra" / "alertmanager" / "alertmanager.yml").read_text()
    assert PROJECT_RECEIVER in config
    config = config.replace(PROJECT_RECEIVER, receiver.url)
    config = re.sub(r"group_wait: \S+", "group_wait: 1s", config)
    config = re.sub(r"group_interval: \S+", "group_interval: 2s", config)
    (workdir / "alertmanager.yml").write_text(config)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        system_tool("prometheus-alertmanager"),
        f"--config.file={workdir / 'alertmanager.yml'}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    with _process(command, url, workdir / "alertmanager.log"):
        yield url


@contextmanager
def private_prometheus(
    workdir: Path, targets: dict[str, str], alertmanager_url: str
) -> Iterator[str]:
    """The project's prometheus.yml scraping ``targets`` (service name -> host:port) every
    second, evaluating the project's rules every second; yields its URL."""
    targets_dir = workdir / "targets"
    targets_dir.mkdir(parents=True, exist_ok=True)
    for name, address in targets.items():
        (targets_dir / f"{name}.json").write_text(
            json.dumps([{"targets": [address], "labels": {"service": name}}])
        )
    am_address = alertmanager_url.removeprefix("http://")
    (targets_dir / "alertmanagers.json").write_text(json.dumps([{"targets": [am_address]}]))
    port = free_port()
    config = (REPO / "infra" / "prometheus" / "prometheus.yml").read_text()
    config = config.replace("/etc/prometheus/targets", str(targets_dir))
    config = config.replace("/etc/prometheus/rules", str(REPO / "infra" / "prometheus" / "rules"))
    config = re.sub(r"scrape_interval: \S+", "scrape_interval: 1s", config)
    config = re.sub(r"evaluation_interval: \S+", "evaluation_interval: 1s", config)
    config = config.replace("localhost:9090", f"127.0.0.1:{port}")
    (workdir / "prometheus.yml").write_text(config)
    url = f"http://127.0.0.1:{port}"
    command = [
        system_tool("prometheus"),
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with _process(command, url, workdir / "prometheus.log"):
        yield url
