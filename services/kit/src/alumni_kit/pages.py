"""Server-rendered pages for every service: one way to render, to choose the language,
and to answer with the kit's security headers.

A service makes one `Pages` with its own template folder and words (the same keys
in "nb" and "en"). Its `base.html` extends the kit's `layout.html` (the document:
blocks `title`, `style`, `header`, `content`), and the kit's `message.html` (a
heading, lines, an optional one-button form and an optional link) extends that
`base.html`: a service's template of the same name wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from alumni_kit.http import SECURITY_HEADERS
from usn_schemas.vocabulary import Language

KIT_TEMPLATES = Path(__file__).parent / "templates"
Words = Mapping[str, Mapping[str, str]]  # language -> key -> text


class Pages:
    def __init__(self, templates: Path, words: Words) -> None:
        loader = ChoiceLoader([FileSystemLoader(templates), FileSystemLoader(KIT_TEMPLATES)])
        self._env = Environment(loader=loader, autoescape=select_autoescape(["html"]))
        self._words = words

    def page(
        self, template: str, lang: Language, status: int = 200, texts: Words | None = None, **context: Any
    ) -> HTMLResponse:
        """`template` in `lang`; `texts` (a module's own words) are laid over the service's."""
        words = {**self._words[lang], **(texts or {}).get(lang, {})}
        html = self._env.get_template(template).render(lang=lang, t=words, **context)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def message(self, lang: Language, heading: str, lines: list[str], status: int = 200, **extra: Any) -> HTMLResponse:
        """A heading, some lines; optionally one form with a button (`form_action`,
        `form_fields`, `button`) and a link (`link`, `link_text`, `link_id`)."""
        return self.page("message.html", lang, status, heading=heading, lines=lines, **extra)


def language(value: object, fallback: object = "nb") -> Language:
    """'nb' or 'en' from a query/form value, else from `fallback`, else bokmål."""
    if value in ("nb", "en"):
        return "en" if value == "en" else "nb"
    return "en" if fallback == "en" else "nb"


def redirect(location: str) -> RedirectResponse:
    """303 See Other: after a POST, the browser GETs `location`."""
    return RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)
