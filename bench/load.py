"""HTTP load for the benchmarks: closed loop (N clients back to back) and open loop (a
fixed offered rate, at most N in flight), from vegeta or from Python (httpx).

vegeta is a compiled load generator (Go): on a 2-core machine shared with the service,
PostgreSQL and Kafka, 200 Python clients cost about as much CPU as the service itself
and set the ceiling of what is measured (bench/README.md). `bench/run` builds vegeta
into .run/cache once and passes its path in BENCH_VEGETA; without it the Python
clients are used, and the output says so.

Why both loops (Little's law, L = λ·W): N closed-loop clients keep N requests in
flight, so at a throughput λ each waits W = N/λ on average — 200 clients at 300/s
means about 670 ms, whatever the service does. The closed loop measures saturation
throughput; latency targets (p99 ≤ 200 ms) are measured with an open loop, requests
sent at a fixed rate whatever the answers, up to N in flight.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    body: dict[str, Any] | None = None


@dataclass
class Outcome:
    """What one load run gave: wall seconds, latencies (ms) and answers in send order."""

    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)  # no answer (status 0): why

    def answered(self, status: int, latency_ms: float, body: bytes, error: str = "") -> None:
        if error:
            self.errors[error] = self.errors.get(error, 0) + 1
        self.latencies.append(latency_ms)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.bodies.append(body)


@dataclass(frozen=True)
class Loop:
    """`rate` None: closed loop with `clients` back to back; else open loop at `rate`/s, ≤ `clients` in flight."""

    clients: int
    rate: int | None = None

    def describe(self) -> str:
        if self.rate is None:
            return f"closed loop, {self.clients} clients"
        return f"open loop, {self.rate}/s offered, ≤ {self.clients} in flight"


def vegeta_binary() -> Path | None:
    found = os.environ.get("BENCH_VEGETA", "")
    return Path(found) if found and Path(found).is_file() else None


def generator_name() -> str:
    return "vegeta" if vegeta_binary() else "httpx"


async def run(requests: list[Request], loop: Loop) -> Outcome:
    vegeta = vegeta_binary()
    if vegeta is not None:
        return await _vegeta(vegeta, requests, loop)
    return await _httpx(requests, loop)


# vegeta's lazy JSON targeter ends the attack at the end of the file; the workers that
# find it empty report this error instead of an answer (lib/targets.go, ErrNoTargets).
_NO_TARGETS = "no targets to attack"


async def _vegeta(vegeta: Path, requests: list[Request], loop: Loop) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="bench-vegeta-") as scratch:
        targets, results = Path(scratch) / "targets.json", Path(scratch) / "results.bin"
        targets.write_text("".join(json.dumps(_vegeta_target(r)) + "\n" for r in requests))
        pace = ["-rate", "0", "-workers", str(loop.clients)] if loop.rate is None else ["-rate", f"{loop.rate}/1s"]
        attack = [str(vegeta), "attack", "-format", "json", "-lazy", "-targets", str(targets)]
        attack += [*pace, "-max-workers", str(loop.clients), "-timeout", "60s", "-output", str(results)]
        await _check(attack)
        encoded = await _check([str(vegeta), "encode", "-to", "json", str(results)])
    return _from_vegeta(encoded)


def _vegeta_target(r: Request) -> dict[str, Any]:
    target: dict[str, Any] = {"method": r.method, "url": r.url}
    if r.body is not None:
        target["body"] = base64.b64encode(json.dumps(r.body).encode()).decode()
        target["header"] = {"Content-Type": ["application/json"]}
    return target


def _from_vegeta(encoded: bytes) -> Outcome:
    results = [json.loads(line) for line in encoded.splitlines() if line.strip()]
    real = sorted((r for r in results if r.get("error") != _NO_TARGETS), key=lambda r: r["seq"])
    if not real:
        return Outcome(0.0)
    began = min(_seconds(r["timestamp"]) for r in real)
    ended = max(_seconds(r["timestamp"]) + r["latency"] / 1e9 for r in real)
    outcome = Outcome(ended - began)
    for r in real:
        body = base64.b64decode(r.get("body") or b"")
        outcome.answered(int(r["code"]), r["latency"] / 1e6, body, r.get("error") or "")
    return outcome


def _seconds(timestamp: str) -> float:
    """Go's RFC 3339 with nanoseconds; Python 3.11 reads it to the microsecond (enough here)."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


async def _check(command: list[str]) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{command[0]} {command[1]} failed ({proc.returncode}): {err.decode(errors='replace')}")
    return out


async def _httpx(requests: list[Request], loop: Loop) -> Outcome:
    """Python clients, each on its own keep-alive connection (the harness before vegeta)."""
    pending = list(reversed(requests))
    answers: list[tuple[int, int, float, bytes]] = []
    pool = asyncio.Queue[httpx.AsyncClient]()
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [httpx.AsyncClient(limits=limits, timeout=60) for _ in range(loop.clients)]
    for client in clients:
        pool.put_nowait(client)

    async def send(index: int, r: Request, http: httpx.AsyncClient) -> None:
        began = time.perf_counter()
        answer = await http.request(r.method, r.url, json=r.body)
        answers.append((index, answer.status_code, (time.perf_counter() - began) * 1000, answer.content))

    async def closed_client(http: httpx.AsyncClient) -> None:
        while pending:
            index = len(requests) - len(pending)
            await send(index, pending.pop(), http)

    async def open_one(index: int, r: Request) -> None:
        http = await pool.get()
        try:
            await send(index, r, http)
        finally:
            pool.put_nowait(http)

    start = time.perf_counter()
    try:
        if loop.rate is None:
            await asyncio.gather(*(closed_client(c) for c in clients))
        else:
            sent = []
            for index, r in enumerate(requests):
                await asyncio.sleep(max(0.0, start + index / loop.rate - time.perf_counter()))
                sent.append(asyncio.create_task(open_one(index, r)))
            await asyncio.gather(*sent)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    outcome = Outcome(time.perf_counter() - start)
    for _, status, latency, body in sorted(answers):
        outcome.answered(status, latency, body)
    return outcome
