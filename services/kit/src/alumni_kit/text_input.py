"""No text a request sends may hold U+0000: PostgreSQL's `text` and `jsonb` cannot store it,
so it would reach the database as a 500. Refused up front with a 422 naming where it was.

`TextInput` is the base of request bodies (every field, nested lists and objects included);
`refuse_nul_parameters` refuses it in the path and in query parameters for a whole app.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from pydantic import BaseModel, field_validator
from starlette.types import ASGIApp, Receive, Scope, Send

NUL = "\x00"
MESSAGE = "must not contain the NUL character (U+0000)"


def holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(holds_nul(v) for v in value)
    return False


class TextInput(BaseModel):
    """A request body whose text goes to the database: U+0000 anywhere in a field is a 422 for that field."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if holds_nul(value):
            raise ValueError(MESSAGE)
        return value


class NoNulParameters:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        where = _nul_parameter(scope) if scope["type"] == "http" else None
        if where is None:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": [{"loc": where, "msg": MESSAGE, "type": "nul_character"}]}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 422, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def refuse_nul_parameters(app: FastAPI) -> None:
    """422 for U+0000 in the path or a query parameter of any request to `app`."""
    app.add_middleware(NoNulParameters)


def _nul_parameter(scope: Scope) -> list[str] | None:
    if NUL in scope["path"]:
        return ["path"]
    query = scope.get("query_string", b"")
    if b"%00" not in query and b"\x00" not in query:
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if NUL in name or NUL in value:
            return ["query", name.replace(NUL, "")]
    return None
