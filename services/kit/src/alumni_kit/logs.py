"""Plain, greppable log lines. Personal data never goes here: log ids, not names."""

from __future__ import annotations

import logging
import sys


def setup_logging(service: str, level: str = "INFO") -> None:
    fmt = f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s"
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr, force=True)
    # aiokafka logs every (re)connection at INFO; keep its warnings only.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
