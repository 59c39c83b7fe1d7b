"""What the member pages' routes share: the collaborators they are built with, and
how a refused form is answered (JSON for the API, the form again for a browser)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi.responses import Response

from alumni_kit.auth import TokenSigner
from alumni_kit.runtime import ServiceRuntime
from membership.selfservice.links import Links
from membership.settings import MembershipSettings
from membership.web import sessions
from membership.web.forms import FlowError, InvalidFieldsError, api_refusal
from membership.web.pages import language

Handler = Callable[..., Awaitable[Response]]


@dataclass(frozen=True)
class Web:
    runtime: ServiceRuntime
    settings: MembershipSettings
    signer: TokenSigner
    links: Links

    @property
    def secure_cookies(self) -> bool:
        return self.settings.public_base_url.startswith("https://")

    def start_session(self, response: Response, member_id: str) -> None:
        ttl = self.settings.session_hours * 3600
        sessions.start_session(response, member_id, self.signer, ttl, secure=self.secure_cookies)


def refused_form(
    exc: FlowError | InvalidFieldsError, data: dict[str, Any], api: bool, form_page: Callable[..., Response]
) -> Response:
    """A refused form: JSON for the API; for a browser, `form_page(lang, status, **context)` again,
    filled in as she sent it, with the problems."""
    if api:
        return api_refusal(exc)
    lang = language(data.get("language"))
    problems = exc.problems if isinstance(exc, InvalidFieldsError) else [exc.text(lang)]
    status = 422 if isinstance(exc, InvalidFieldsError) else exc.status
    return form_page(lang, status, form=data, problems=problems)
