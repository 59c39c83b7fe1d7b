"""Calling the `alumni` command as an operator does: the console script in .venv/bin, a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from tests.stack import Stack

ALUMNI = Path(sys.executable).parent / "alumni"


def alumni(
    stack: Stack, prefix: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`alumni ARGS --bootstrap … --prefix …`; its exit code, stdout and stderr."""
    command = [str(ALUMNI), *args, "--bootstrap", stack.bootstrap, "--prefix", prefix]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=180)


async def alumni_at_once(stack: Stack, prefix: str, *calls: tuple[list[str], dict[str, str] | None]) -> list[Ran]:
    """Several `alumni` calls run at the same time (each is a process that mostly waits)."""

    async def one(args: list[str], env: dict[str, str] | None) -> Ran:
        command = [str(ALUMNI), *args, "--bootstrap", stack.bootstrap, "--prefix", prefix]
        proc = await asyncio.create_subprocess_exec(
            *command, stdout=PIPE, stderr=PIPE, env={**os.environ, **(env or {})}
        )
        out, err = await asyncio.wait_for(proc.communicate(), 180)
        return Ran(proc.returncode or 0, out.decode(), err.decode())

    return list(await asyncio.gather(*(one(args, env) for args, env in calls)))


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def every_committed_offset(bootstrap: str) -> dict[str, dict[tuple[str, int], int]]:
    """Every consumer group on the broker with its committed offsets."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        groups = sorted(str(g[0]) for g in await admin.list_consumer_groups())
        out = {}
        for group in groups:
            offsets = await admin.list_consumer_group_offsets(group)
            out[group] = {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}
        return out
    finally:
        await admin.close()
