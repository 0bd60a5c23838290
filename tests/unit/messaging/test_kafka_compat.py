"""kafka-python leaves the TCP socket of a refused connection open; our fix closes it."""

from __future__ import annotations

import gc
import socket
import warnings

import pytest

from splitlab.platform.messaging import kafka_compat


def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed on exit: connecting to it is refused


def tcp_sockets_leaked_by_a_failed_bootstrap() -> int:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaConnectionError, KafkaTimeoutError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises((KafkaTimeoutError, KafkaConnectionError)):
            KafkaAdminClient(
                bootstrap_servers=f"127.0.0.1:{refused_port()}",
                bootstrap_timeout_ms=400,
                reconnect_backoff_ms=20,
            )
        gc.collect()
    return sum(
        1
        for w in caught
        if issubclass(w.category, ResourceWarning) and "family=2" in str(w.message)
    )


def test_refused_connections_leave_no_open_tcp_socket_with_the_fix() -> None:
    kafka_compat.close_sockets_of_failed_connects()
    assert tcp_sockets_leaked_by_a_failed_bootstrap() == 0
