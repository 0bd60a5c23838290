"""A private, throwaway Kafka broker for fault tests (kill it without touching the shared one).

It runs the same jars and ``infra/kafka/server.properties`` as the native stack, on free ports
with its data in a temporary folder, so tests can stop and restart it at will.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from tests.support.stack import REPO, STATE_DIR

KAFKA_LIBS = STATE_DIR / "kafka" / "libs"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class KafkaBroker:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.controller_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "kafka.log"
        template = (REPO / "infra" / "kafka" / "server.properties").read_text()
        self.config = workdir / "server.properties"
        self.config.write_text(
            template.replace("@KAFKA_PORT@", str(self.port))
            .replace("@CONTROLLER_PORT@", str(self.controller_port))
            .replace("@DATA_DIR@", str(workdir / "data"))
        )

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self, *args: str) -> list[str]:
        log4j = f"-Dlog4j.configuration=file:{REPO / 'infra' / 'kafka' / 'log4j.properties'}"
        return ["java", "-Xms128m", "-Xmx384m", "-cp", f"{KAFKA_LIBS}/*", log4j, *args]

    def start(self, timeout: float = 90.0) -> None:
        if not any(KAFKA_LIBS.glob("kafka_2.13-*.jar")):
            raise RuntimeError(f"no Kafka jars in {KAFKA_LIBS}: run `make stack-up` first")
        if not (self.workdir / "data" / "meta.properties").exists():
            subprocess.run(
                self._java("kafka.tools.StorageTool", "format", "-t", "splitlab-test-cluster-1",
                           "-c", str(self.config)),
                check=True, capture_output=True,
            )  # fmt: skip
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self._java("kafka.Kafka", str(self.config)), stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"test broker exited; see {self.log_path}")
            with self.log_path.open("rb") as log:
                log.seek(offset)
                if b"Kafka Server started" in log.read():
                    return
            time.sleep(0.2)
        raise RuntimeError(f"test broker did not start in {timeout}s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL: the broker dies as in a crash, without a clean shutdown."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
