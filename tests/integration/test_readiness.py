"""/readyz of each service pings its real dependencies and names the one that is down."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from celery.contrib.testing.worker import start_worker
from fastapi import FastAPI
from fastapi.testclient import TestClient

from splitlab.platform.settings import Settings
from splitlab_analyzer.app import create_app as create_analyzer
from splitlab_assignment.app import create_app as create_assignment
from splitlab_router.app import create_app as create_router
from splitlab_trainer.app import create_app as create_trainer
from splitlab_trainer.celery_app import create_celery
from tests.support.kafka_broker import KafkaBroker

KAFKA_SERVICES: dict[str, Callable[[Settings], FastAPI]] = {
    "assignment": create_assignment,
    "router": create_router,
    "analyzer": create_analyzer,
}


@pytest.mark.parametrize("name", sorted(KAFKA_SERVICES))
def test_ready_when_every_dependency_answers(name: str, settings: Settings) -> None:
    with TestClient(KAFKA_SERVICES[name](settings)) as client:
        response = client.get("/readyz")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "ready"
        assert set(body["dependencies"]) == {"postgres", "redis", "kafka"}
        assert client.get("/healthz").json() == {"status": "ok", "service": name}
        metrics = client.get("/metrics").text
        assert f'splitlab_dependency_up{{dependency="kafka",service="{name}"}} 1.0' in metrics


def test_killing_kafka_makes_readyz_503_naming_kafka(
    settings: Settings, private_kafka: KafkaBroker
) -> None:
    own = settings.model_copy(update={"kafka_bootstrap_servers": private_kafka.bootstrap_servers})
    with (
        TestClient(create_assignment(own)) as assignment,
        TestClient(create_router(own)) as router,
        TestClient(create_analyzer(own)) as analyzer,
    ):
        clients = {"assignment": assignment, "router": router, "analyzer": analyzer}
        for client in clients.values():
            assert client.get("/readyz").status_code == 200

        private_kafka.kill()

        for name, client in clients.items():
            response = client.get("/readyz")
            assert response.status_code == 503, f"{name}: {response.text}"
            body = response.json()
            assert body["down"] == ["kafka"], name
            assert body["dependencies"]["kafka"]["error"], name
            assert body["dependencies"]["postgres"]["up"], name
            assert body["dependencies"]["redis"]["up"], name
            metrics = client.get("/metrics").text
            assert f'splitlab_dependency_up{{dependency="kafka",service="{name}"}} 0.0' in metrics

        private_kafka.start()
        for name, client in clients.items():
            assert client.get("/readyz").status_code == 200, name


@pytest.fixture
def trainer_worker(settings: Settings) -> Iterator[None]:
    celery = create_celery(settings)
    with start_worker(celery, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        yield


def test_trainer_ready_only_with_a_live_worker(settings: Settings) -> None:
    with TestClient(create_trainer(settings)) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["down"] == ["celery_workers"]


def test_trainer_ready_with_a_live_worker(settings: Settings, trainer_worker: None) -> None:
    with TestClient(create_trainer(settings)) as client:
        response = client.get("/readyz")
        assert response.status_code == 200, response.text
        assert set(response.json()["dependencies"]) == {
            "postgres",
            "celery_broker",
            "celery_workers",
        }
