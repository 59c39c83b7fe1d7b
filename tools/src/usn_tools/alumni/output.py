"""Output that diffs well: one JSON object a line, keys sorted; times in UTC."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, Any

from tqdm import tqdm


def json_line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def write_lines(objs: Iterable[dict[str, Any]], out: IO[str]) -> int:
    n = 0
    for obj in objs:
        out.write(json_line(obj) + "\n")
        n += 1
    return n


def iso_ms(ms: int) -> str:
    """A broker timestamp (milliseconds) as ISO 8601 UTC, to the millisecond."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def text_or_base64(raw: bytes | None) -> dict[str, str | None]:
    """A key or header value: UTF-8 text as it is, anything else as base64 (said so)."""
    if raw is None:
        return {"text": None}
    try:
        return {"text": raw.decode()}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(raw).decode()}


def progress(total: int, what: str, enabled: bool | None) -> tqdm:
    """A progress bar on stderr with rate and ETA; None = only when stderr is a terminal."""
    disable = not sys.stderr.isatty() if enabled is None else not enabled
    return tqdm(
        total=total, unit="msg", unit_scale=True, desc=what, file=sys.stderr, disable=disable, dynamic_ncols=True
    )


def table(rows: list[list[str]], headers: list[str], out: IO[str]) -> None:
    """A plain aligned table (the last column is not padded)."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row[:-1], widths[:-1], strict=True)] + [str(row[-1])]
        out.write("  ".join(cells).rstrip() + "\n")
