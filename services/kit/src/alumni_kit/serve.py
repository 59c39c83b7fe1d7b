"""What every service's `__main__` does: logging, tracing, then uvicorn on the app."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import uvicorn
from fastapi import FastAPI

from alumni_kit.logs import setup_logging
from alumni_kit.settings import ServiceSettings
from alumni_kit.tracing import setup_tracing, shutdown_tracing

S = TypeVar("S", bound=ServiceSettings)


def serve(name: str, settings: S, create_app: Callable[[S], FastAPI]) -> None:
    setup_logging(name, settings.log_level)
    setup_tracing(name, settings.otel_exporter)
    uvicorn.run(
        create_app(settings), host=settings.http_host, port=settings.http_port, log_level="warning", access_log=False
    )
    shutdown_tracing()  # the spans still buffered are exported before the process ends
