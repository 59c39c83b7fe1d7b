"""What the sign-up, application and login routes share: reading a body that is
either a browser's form or JSON, precise 4xx answers, and the errors the flows raise."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from alumni_kit.http import Responses, refusals
from membership.web.i18n import TEXT
from membership.web.pages import SECURITY_HEADERS, Language

Model = TypeVar("Model", bound=BaseModel)


class FlowError(Exception):
    """A refusal the person can act on: status, and a text key of i18n.py with its fields."""

    def __init__(self, status: int, key: str, **fields: object) -> None:
        super().__init__(key)
        self.status, self.key, self.fields = status, key, fields

    def text(self, lang: Language) -> str:
        return TEXT[lang][self.key].format(**self.fields)


class InvalidFieldsError(Exception):
    """422: the body's fields broke these rules (one precise line each)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip() == "application/json"


async def read_body(request: Request) -> dict[str, Any]:
    """The posted fields, from JSON or a form (a form's values are strings)."""
    if is_json(request):
        try:
            body = json.loads(await request.body())
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InvalidFieldsError(["the body is not valid JSON"]) from None
        if not isinstance(body, dict):
            raise InvalidFieldsError(["the body must be a JSON object"])
        return body
    form = await request.form()
    return {key: str(value) for key, value in form.items()}


# A form a browser posts and scripts send as JSON: refused with a page, or JSON (409: it exists already).
FORM_REFUSALS = refusals(400, 413) | refusals(409, 422, html=True)


def form_or_json(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route that reads `model` with `read_body`: its fields, as JSON or a form."""
    schema = model.model_json_schema()
    assert "$defs" not in schema, f"{model.__name__}: a flat model only (the document has no place for its $defs)"
    content = {media: {"schema": schema} for media in ("application/json", "application/x-www-form-urlencoded")}
    return {"requestBody": {"required": True, "content": content}}


def page_or_json(status: int, description: str) -> Responses:
    """The documented answer of a route that serves a browser's form (a page) and JSON clients."""
    return {status: {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}}


def parse(model: type[Model], data: dict[str, Any]) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidFieldsError([_problem(e) for e in exc.errors(include_url=False)]) from None


def _problem(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "body"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown field"
    return f"{where}: {error['msg']}"


def json_error(status: int, detail: str | list[str]) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=SECURITY_HEADERS)


def api_refusal(exc: FlowError | InvalidFieldsError) -> Response:
    """The JSON answer to a refused request (API clients read English)."""
    if isinstance(exc, InvalidFieldsError):
        return json_error(422, exc.problems)
    return json_error(exc.status, exc.text("en"))
