"""The mailer's render worker (a real child process): templates that fail or explode are
refused within the budget, a worker that stops answering is killed and replaced, and a
body renders the same when it is checked and when it is sent."""

from __future__ import annotations

import os
import signal
import time
from email import message_from_bytes
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import default

import pytest

from mailer import compose
from mailer.rendering import Renderer, RenderLimits

# Generous for a busy machine: a case meant to hit the output cap must not hit the clock first.
LIMITS = RenderLimits(seconds=2.0, max_bytes=256 * 1024, memory_mib=512)
SENDER = Address(display_name="USN Alumni", addr_spec="alumni@usn.no")


def _campaign(body: str) -> compose.Campaign:
    return compose.Campaign("c-1", "TNM", "Nytt fra TNM", body, "nb", False)


@pytest.fixture
async def renderer() -> Renderer:
    return Renderer(LIMITS, SENDER, "test render")


REFUSED = {
    "{{ 1/0 }}": "division by zero",
    "{{ x.__class__ }}": "unsafe",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}": "unsafe",
    "{{ range(100001) }}": "range() of 100001 numbers; at most 10000",
    "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}": "longer than 2 s",
    "{% for a in range(10000) %}{{ 'abc' * 100 }}{% endfor %}": "the rendered text is over 262144 bytes",
    "{{ 'x' * 10 ** 9 }}": "a value over 262144 characters",
    "{{ 2 ** 100000 }}": "a number over 4096 bits",
    "{{ 'x'|center(10 ** 9) }}": "more memory than rendering is allowed",
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}": "recurses too deeply",
    "{{ lipsum(10 ** 6) }}": "'lipsum' is undefined",
    "{{ [1, 2]|random }}": "No filter named 'random'",
    "{{ given_name + 1 }}": "the template failed when rendered (TypeError)",
    # The names are placeholders while rendering: what acts on them is refused, not sent as nonsense.
    "Hei {{ given_name|lower }}": "can only be shown as they are",
    "{{ family_name|length }} letters": "can only be shown as they are",
    "[a]: https://usn.no/x\n\n" + "[a]" * 20_000: "the HTML of the rendered text is over 262144 bytes",
}


@pytest.mark.parametrize("body", list(REFUSED))
async def test_a_template_that_fails_or_explodes_is_refused_within_the_budget(renderer: Renderer, body: str) -> None:
    await renderer.prepare(_campaign("warm-up"))  # the worker's start-up is not the template's time
    start = time.monotonic()
    with pytest.raises(compose.TemplateProblemError) as refused:
        await renderer.prepare(_campaign(body))
    took = time.monotonic() - start
    await renderer.close()
    assert REFUSED[body] in refused.value.message
    assert took < LIMITS.seconds + 1.5, took


async def test_a_worker_that_stops_answering_is_killed_and_replaced(renderer: Renderer) -> None:
    await renderer.prepare(_campaign("Hei"))
    pid = renderer.worker_pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # as stuck as a worker in one long C call: no alarm runs
    start = time.monotonic()
    with pytest.raises(compose.TemplateProblemError, match="rendering takes longer than 2 s"):
        await renderer.prepare(_campaign("Hei {{ given_name }}"))
    assert LIMITS.seconds <= time.monotonic() - start < LIMITS.seconds + 1.5
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped
    prepared = await renderer.prepare(_campaign("Hei {{ given_name }}"))  # a new worker
    assert renderer.worker_pid not in (None, pid)
    await renderer.close()
    assert prepared.campaign.body_markdown == "Hei {{ given_name }}"


async def test_a_body_renders_the_same_when_checked_and_when_sent(renderer: Renderer) -> None:
    body = "Hei {{ given_name }} {{ family_name }}!\n\n[Jul](https://www.usn.no/jul) {{ range(3)|sum }}"
    checked, sent = await renderer.prepare(_campaign(body)), await renderer.prepare(_campaign(body))
    await renderer.close()
    recipient = compose.Recipient("m-1", "kari@example.no", "Kari", "Nordmann")
    links = compose.Links("https://u.example/unsub", "u@example.no", lambda url: f"https://t.example/?{url}", None)

    def bodies(prepared: compose.Prepared) -> tuple[str, str]:
        message = message_from_bytes(prepared.render(recipient, links, "<1@usn.no>"), policy=default)
        assert isinstance(message, EmailMessage)
        plain, html = (message.get_body((kind,)) for kind in ("plain", "html"))
        assert plain is not None
        assert html is not None
        return plain.get_content(), html.get_content()

    text, html = bodies(checked)
    assert bodies(sent) == (text, html)
    assert text.startswith("Hei Kari Nordmann!\n\n[Jul](https://www.usn.no/jul) 3")
    assert 'href="https://t.example/?https://www.usn.no/jul"' in html
