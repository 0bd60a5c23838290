"""A fix for kafka-python 3.0's connection code, applied once by ``splitlab.platform.connections``.

``kafka.net.inet.KafkaNetSocket.sock_connect`` raises when a connection is refused or times
out without closing the socket it opened. Every reconnect attempt to a dead broker then leaves
a socket for the garbage collector (a ``ResourceWarning`` each). The wrapper closes the socket
when the connect fails and changes nothing else. Remove it when kafka-python closes the socket
itself (``tests/unit/messaging/test_kafka_compat.py`` shows whether it still leaks).
"""

from __future__ import annotations

import functools
import socket
from typing import Any

_applied = False


def close_sockets_of_failed_connects() -> None:
    global _applied
    if _applied:
        return
    from kafka.net.inet import KafkaNetSocket

    original = KafkaNetSocket.sock_connect

    @functools.wraps(original)
    async def sock_connect(self: Any, net: Any, sock: socket.socket, *args: Any, **kw: Any) -> Any:
        try:
            return await original(self, net, sock, *args, **kw)
        except BaseException:
            sock.close()
            raise

    KafkaNetSocket.sock_connect = sock_connect
    _applied = True
