"""Server-rendered member pages: one Jinja2 environment, one way to render, safe headers.

Every page extends templates/base.html (blocks `title` and `content`). A logged-in
page passes `csrf` (sessions.csrf_token), which also turns on the navigation and
the log-out button. Other modules bring their own words with `texts=` (same keys
in "nb" and "en"); they are laid over the common ones from i18n.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from alumni_kit.http import SECURITY_HEADERS as SECURITY_HEADERS  # the kit's page policy, re-exported
from membership.web.i18n import TEXT
from usn_schemas.vocabulary import Language as Language  # re-exported for this service

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)


def language(value: object, fallback: object = "nb") -> Language:
    """'nb' or 'en' from a query/form value, else from `fallback`, else bokmål."""
    if value in ("nb", "en"):
        return "en" if value == "en" else "nb"
    return "en" if fallback == "en" else "nb"


def page(
    template: str,
    lang: Language,
    status: int = 200,
    texts: Mapping[str, Mapping[str, str]] | None = None,
    **context: Any,
) -> HTMLResponse:
    words = {**TEXT[lang], **(texts or {}).get(lang, {})}
    html = TEMPLATES.get_template(template).render(lang=lang, t=words, **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def message(lang: Language, heading: str, lines: list[str], status: int = 200, **extra: Any) -> HTMLResponse:
    """A heading, some lines and optionally one form with a button (`form_action`, `form_fields`, `button`)."""
    return page("message.html", lang, status, heading=heading, lines=lines, **extra)


def redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)
