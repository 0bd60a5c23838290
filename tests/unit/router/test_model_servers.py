"""Remote models: one connection pool per model server, keep-alive connections reused, and no
import attempted on the request path (httpcore's per-lock ``import sniffio`` was a failed import,
a ``sys.path`` scan, on every lock of every request while sniffio was not installed)."""

from __future__ import annotations

import asyncio
import importlib.abc
import json
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from splitlab.platform.connections import create_model_server_pool
from splitlab.platform.settings import Settings
from splitlab_router.serving import Feature, HttpModel, ModelError, ModelServers, server_of
from tests.support.kafka_broker import free_port

ANSWER = json.dumps({"predictions": [{"value": 1, "probabilities": {"0": 0.2, "1": 0.8}}]})


class ImportRecorder(importlib.abc.MetaPathFinder):
    """Sees every import that ``sys.modules`` did not answer."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> None:
        self.names.append(fullname)


async def serve(connections: list[asyncio.Event], close: bool = False) -> asyncio.Server:
    """A keep-alive HTTP/1.1 model server answering KServe's shape; one event per connection,
    set when the client has closed it."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        closed = asyncio.Event()
        connections.append(closed)
        body = ANSWER.encode()
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            await reader.readexactly(length)
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n%s"
                b"content-length: %d\r\n\r\n%s"
                % (b"connection: close\r\n" if close else b"", len(body), body)
            )
            await writer.drain()
            if close:
                break
        writer.close()
        await writer.wait_closed()
        closed.set()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def settings() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_one_pool_per_model_server() -> None:
    servers = ModelServers(lambda **options: create_model_server_pool(settings(), **options))
    a = servers.client_for("http://models.internal/v1/models/a:predict")
    assert servers.client_for("http://models.internal:80/v1/models/b:predict") is a
    assert servers.client_for("http://models.internal:8080/v1/models/a:predict") is not a
    assert servers.client_for("https://models.internal/v1/models/a:predict") is not a
    assert len(servers) == 3
    assert server_of("https://m.example/x") == "https://m.example:443"
    asyncio.run(servers.aclose())
    assert len(servers) == 0


def test_calls_reuse_one_connection_and_import_nothing() -> None:
    async def run() -> tuple[list[Any], int, list[str]]:
        connections: list[asyncio.Event] = []
        server = await serve(connections)
        port = server.sockets[0].getsockname()[1]
        servers = ModelServers(lambda **options: create_model_server_pool(settings(), **options))
        url = f"http://127.0.0.1:{port}/v1/models/m:predict"
        model = HttpModel("m", "1", [Feature("x", "float")], url, servers.client_for(url), 2.0)
        await model.predict({"x": 1.0})  # the first call may import what it needs once
        recorder = ImportRecorder()
        sys.meta_path.insert(0, recorder)
        try:
            answers = [await model.predict({"x": float(i)}) for i in range(20)]
        finally:
            sys.meta_path.remove(recorder)
            await servers.aclose()
            for closed in connections:
                await asyncio.wait_for(closed.wait(), 5)
            server.close()
            await server.wait_closed()
        return answers, len(connections), recorder.names

    answers, connections, imports = asyncio.run(run())
    assert {(a.value, a.probabilities["1"]) for a in answers} == {(1, 0.8)}  # type: ignore[index]
    assert connections == 1
    assert imports == []


def test_a_server_that_closes_connections_and_one_that_is_gone() -> None:
    async def run() -> tuple[list[Any], int, ModelError]:
        connections: list[asyncio.Event] = []
        server = await serve(connections, close=True)
        port = server.sockets[0].getsockname()[1]
        servers = ModelServers(lambda **options: create_model_server_pool(settings(), **options))
        url = f"http://127.0.0.1:{port}/v1/models/m:predict"
        model = HttpModel("m", "1", [Feature("x", "float")], url, servers.client_for(url), 2.0)
        gone_url = f"http://127.0.0.1:{free_port()}/v1/models/m:predict"
        gone = HttpModel(
            "g", "1", [Feature("x", "float")], gone_url, servers.client_for(gone_url), 2.0
        )
        try:
            answers = [await model.predict({"x": float(i)}) for i in range(5)]
            try:
                await gone.predict({"x": 1.0})
            except ModelError as exc:
                failure = exc
        finally:
            await servers.aclose()
            for closed in connections:
                await asyncio.wait_for(closed.wait(), 5)
            server.close()
            await server.wait_closed()
        return answers, len(connections), failure

    answers, connections, failure = asyncio.run(run())
    assert [a.value for a in answers] == [1] * 5
    assert connections == 5  # a new connection for every call, as the server asks
    assert failure.kind == "error"
    assert "g:1: ConnectError" in failure.message
