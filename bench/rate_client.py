"""A constant-rate (open-loop) HTTP load generator on raw asyncio sockets, for latency at a
fixed rate (wrk2 is not packaged in Debian; wrk is closed-loop).

Request ``i`` is due at ``start + i / rate``; its latency runs from that due time, not from when
a connection became free, so a stalled server is charged for the queue it causes (no coordinated
omission). Run as a separate process:
``python bench/rate_client.py URL --rate 1000 --duration 10`` prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from urllib.parse import urlsplit


def build_request(host: str, port: int, path: str, unit: int, experiment: str) -> bytes:
    body = json.dumps({"unit_id": f"unit-{unit}", "experiment_key": experiment}).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def run(url: str, rate: float, duration: float, connections: int, experiment: str,
              units: int) -> dict[str, float]:  # fmt: skip
    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/"
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection(host, port))
    latencies: list[float] = []
    errors = 0
    total = int(rate * duration)
    rng = random.Random(7)

    async def one(due: float, unit: int) -> None:
        nonlocal errors
        reader, writer = await pool.get()
        try:
            writer.write(build_request(host, port, path, unit, experiment))
            status = await read_response(reader)
            if status != 200:
                errors += 1
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            reader, writer = await asyncio.open_connection(host, port)
        latencies.append(time.perf_counter() - due)
        pool.put_nowait((reader, writer))

    tasks = []
    start = time.perf_counter() + 0.05
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, rng.randrange(units))))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies)
    q = statistics.quantiles(ordered, n=1000, method="inclusive")
    return {
        "requests": float(len(latencies)),
        "errors": float(errors),
        "achieved_rate_per_s": len(latencies) / elapsed,
        "p50_ms": q[499] * 1000,
        "p90_ms": q[899] * 1000,
        "p99_ms": q[989] * 1000,
        "max_ms": ordered[-1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, required=True, help="Requests per second.")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--experiment", default="bench")
    parser.add_argument("--units", type=int, default=1_000_000)
    args = parser.parse_args()
    result = asyncio.run(
        run(args.url, args.rate, args.duration, args.connections, args.experiment, args.units)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
