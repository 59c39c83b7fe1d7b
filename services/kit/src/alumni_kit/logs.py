"""Plain, greppable log lines. Personal data never goes here: log ids, not names."""

from __future__ import annotations

import logging
import sys
import traceback


def setup_logging(service: str, level: str = "INFO") -> None:
    fmt = f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s"
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr, force=True)
    # aiokafka logs every (re)connection at INFO; keep its warnings only.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


def where_it_failed(exc: BaseException) -> str:
    """An exception's class and the line that raised it, without its message.

    Messages can carry data (a database error quotes the conflicting key), so
    logs get only this; the full message goes with the message to the DLQ.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    return f"{type(exc).__name__} at {last.filename.rsplit('/', 1)[-1]}:{last.lineno} in {last.name}"
