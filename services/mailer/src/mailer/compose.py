"""Well-formed newsletters: Markdown with `{{ given_name }}` → text + HTML in the
faculty's template, UTF-8 headers, a unique Message-ID, one-click unsubscribe,
and no way for any field to inject a header."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, formatdate, make_msgid
from html import escape as escape_html
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markdown_it import MarkdownIt

from alumni_kit import ical
from mailer.bodies import MEMBER_LINK, TemplateProblemError, render_body

FACULTY_NAMES = {
    "HH": (
        "Fakultet for humaniora, idretts- og utdanningsvitenskap",
        "Faculty of Humanities, Sports and Educational Science",
    ),
    "TNM": (
        "Fakultet for teknologi, naturvitenskap og maritime fag",
        "Faculty of Technology, Natural Sciences and Maritime Sciences",
    ),
    "HS": ("Fakultet for helse- og sosialvitenskap", "Faculty of Health and Social Sciences"),
    "HIU": ("Handelshøyskolen ved USN", "USN School of Business"),
    "USN": ("Universitetet i Sørøst-Norge", "University of South-Eastern Norway"),
}
# Each faculty's newsletters carry its own accent colour and name (the per-faculty template).
FACULTY_COLOURS = {"HH": "#8a3b12", "TNM": "#0b4f6c", "HS": "#5b2a86", "HIU": "#1f6b3a", "USN": "#0b6d6a"}
# Campaign bodies are sandboxed Jinja templates, rendered only in the render worker
# (bodies.py, render_worker.py; docs/mailer.md: the bounds).
# No auto_reload: a template edited on disk under a running process must not meet code that predates it.
_PAGES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    auto_reload=False,
)
# No raw HTML from Markdown: whatever a name or body holds is shown, never run.
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class Recipient:
    member_id: str
    address: str
    given_name: str
    family_name: str


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    faculty: str
    subject: str
    body_markdown: str
    language: str
    track_opens: bool
    # campaigns v1's optional `member_link`: where each recipient's signed link goes ({token}).
    member_link_url: str | None = None
    member_link_days: int | None = None


@dataclass(frozen=True)
class Links:
    unsubscribe_url: str  # the consent service's RFC 8058 one-click URL for this member and purpose
    unsubscribe_mailto: str
    click: Callable[[str], str]  # original URL → tracked redirect URL
    open_pixel: str | None
    member_link: str | None = None  # her own signed link, for a campaign with `member_link_url`


def one_line(text: str) -> str:
    """Header text with every control character (CR, LF, ...) turned into a space."""
    return _CONTROL.sub(" ", text).strip()


@dataclass(frozen=True)
class PreparedParts:
    """A campaign rendered once with placeholders for the recipient: what the render
    worker hands back (plain data, so it crosses the process boundary as JSON)."""

    campaign: Campaign
    mark: str
    urls: tuple[str, ...]
    text: str
    html: str
    head: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreparedParts:
        return cls(**{**data, "campaign": Campaign(**data["campaign"]), "urls": tuple(data["urls"])})


# Who a campaign is rendered for when it is checked: the longest plausible values, and
# letters that are two bytes in UTF-8, so the size checked is not below a real one.
SYNTHETIC_RECIPIENT = Recipient("00000000-0000-4000-8000-000000000000", "aase.odegard@example.invalid",
                                "Åse Marie Ødegård-Sæther", "Brænne-Østby")  # fmt: skip
_SYNTHETIC_LINK = "https://alumni.usn.no/t/x/" + "x" * 300


def synthetic_links() -> Links:
    """Links as long as the signed ones (a click token carries its URL in base64) and then some."""

    def click(url: str) -> str:
        return _SYNTHETIC_LINK + "x" * (len(url) * 4 // 3)

    return Links(_SYNTHETIC_LINK, "unsubscribe@example.invalid", click, _SYNTHETIC_LINK, _SYNTHETIC_LINK)


def prepare(campaign: Campaign, sender: Address, max_bytes: int) -> PreparedParts:
    """Render the campaign once with placeholders, bounded by `max_bytes`; raises TemplateProblemError.

    Runs in the render worker only (render_worker.py): a template's cost is bounded there.
    """
    # The placeholders' mark depends on the body alone, so a body renders the same when it
    # is checked and when it is sent; no body can contain the hash of itself.
    mark = hashlib.sha256(campaign.body_markdown.encode()).hexdigest()[:12].upper()
    slot = {k: _slot(k, mark) for k in ("GIVEN", "FAMILY", "UNSUB", "PIXEL", "MLINK")}
    variables = {"given_name": slot["GIVEN"], "family_name": slot["FAMILY"]}
    if campaign.member_link_url:  # a placeholder, not http(s): never wrapped in a tracked redirect
        variables[MEMBER_LINK] = slot["MLINK"]
    markdown = render_body(campaign.body_markdown, variables, max_bytes)
    language = campaign.language if campaign.language in ("nb", "en") else "nb"
    names = FACULTY_NAMES.get(campaign.faculty, FACULTY_NAMES["USN"])
    faculty_name = names[0 if language == "nb" else 1]
    urls: list[str] = []
    html = _PAGES.get_template("newsletter.html").render(
        lang=language,
        faculty=campaign.faculty,
        faculty_name=faculty_name,
        accent=FACULTY_COLOURS.get(campaign.faculty, FACULTY_COLOURS["USN"]),
        subject=one_line(campaign.subject),
        body=_html_body(markdown, mark, urls),
        unsubscribe_url=slot["UNSUB"],
        open_pixel=slot["PIXEL"] if campaign.track_opens else None,
    )
    if len(html.encode()) > max_bytes:
        raise TemplateProblemError(None, f"the HTML of the rendered text is over {max_bytes} bytes")
    footer = {"nb": "Meld deg av", "en": "Unsubscribe"}[language]
    text = f"{markdown.rstrip()}\n\n-- \n{faculty_name}\n{footer}: {slot['UNSUB']}\n"
    head = (
        f"From: {formataddr((sender.display_name, sender.addr_spec), 'utf-8')}\r\n"
        f"Subject: {Header(one_line(campaign.subject), 'utf-8', maxlinelen=76).encode(linesep=CRLF)}\r\n"
        f"Content-Language: {language}\r\nMIME-Version: 1.0\r\n"
    )
    return PreparedParts(campaign, mark, tuple(urls), text, html, head)


def _slot(kind: str, mark: str) -> str:
    return f"QQ{kind}{mark}QQ"


def check(campaign: Campaign, sender: Address, max_bytes: int) -> PreparedParts:
    """`prepare`, then the whole message for a synthetic recipient: what is accepted can be sent."""
    parts = prepare(campaign, sender, max_bytes)
    # The names are placeholders while the body renders, so a filter or test on them (`|lower`,
    # `== "Kari"`) would act on the placeholder: the body must come out the same when it is
    # rendered with the synthetic names themselves.
    names = {"given_name": SYNTHETIC_RECIPIENT.given_name, "family_name": SYNTHETIC_RECIPIENT.family_name}
    if campaign.member_link_url:
        names[MEMBER_LINK] = _SYNTHETIC_LINK
    direct = render_body(campaign.body_markdown, names, max_bytes)
    filled = parts.text.replace(_slot("GIVEN", parts.mark), names["given_name"])
    filled = filled.replace(_slot("MLINK", parts.mark), _SYNTHETIC_LINK)
    if not filled.replace(_slot("FAMILY", parts.mark), names["family_name"]).startswith(f"{direct.rstrip()}\n\n-- \n"):
        raise TemplateProblemError(
            None,
            "given_name, family_name and member_link can only be shown as they are ({{ given_name }}),"
            " not changed or tested",
        )
    message = Prepared(parts).render(SYNTHETIC_RECIPIENT, synthetic_links(), "<check@example.invalid>")
    if len(message) > max_bytes:
        raise TemplateProblemError(None, f"the message would be {len(message)} bytes; at most {max_bytes}")
    return parts


def _html_body(markdown: str, mark: str, urls: list[str]) -> str:
    tokens = _MARKDOWN.parse(markdown)
    for token in tokens:
        for child in token.children or []:
            href = str(child.attrGet("href") or "") if child.type == "link_open" else ""
            if href.startswith(("http://", "https://")):
                child.attrSet("href", f"QQCLICK{len(urls)}{mark}QQ")
                urls.append(href)
    return str(_MARKDOWN.renderer.render(tokens, _MARKDOWN.options, {}))


class Prepared:
    """A campaign rendered once, with placeholders; `render()` fills in one recipient.

    Markdown, Jinja and the MIME machinery of the `email` package cost about 8 ms a
    message; done once per campaign (by the render worker) and finished per recipient
    by substitution and base64, a message costs a fraction of a millisecond (bench/run mailer).
    """

    def __init__(self, parts: PreparedParts) -> None:
        self.campaign = parts.campaign
        self._urls = parts.urls
        self._text, self._html, self._head = parts.text, parts.html, parts.head
        self._pattern = re.compile(rf"QQ(GIVEN|FAMILY|UNSUB|PIXEL|MLINK|CLICK\d+){parts.mark}QQ")

    def render(self, recipient: Recipient, links: Links, message_id: str) -> bytes:
        """The whole message, CRLF line ends, ready for SMTP DATA."""
        given, family = one_line(recipient.given_name), one_line(recipient.family_name)
        plain = {
            "GIVEN": given,
            "FAMILY": family,
            "UNSUB": links.unsubscribe_url,
            "PIXEL": links.open_pixel or "",
            "MLINK": links.member_link or "",
        }

        def fill(escape: Callable[[str], str]) -> Callable[[re.Match[str]], str]:
            def one(match: re.Match[str]) -> str:
                key = match.group(1)
                value = links.click(self._urls[int(key[5:])]) if key.startswith("CLICK") else plain[key]
                return escape(value)

            return one

        text = self._pattern.sub(fill(lambda v: v), self._text)
        html = self._pattern.sub(fill(lambda v: escape_html(v, quote=True)), self._html)
        boundary = f"=_{secrets.token_hex(12)}"
        head = (
            self._head
            + f"To: {formataddr((one_line(f'{given} {family}'), one_line(recipient.address)), 'utf-8')}\r\n"
            + f"Date: {formatdate(usegmt=True)}\r\nMessage-ID: {one_line(message_id)}\r\n"
            + f"List-Unsubscribe: <{one_line(links.unsubscribe_url)}>,\r\n"
            + f" <mailto:{one_line(links.unsubscribe_mailto)}?subject=unsubscribe>\r\n"
            + "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
            + f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
        )
        return (
            head.encode()
            + _part(boundary, "text/plain", text)
            + _part(boundary, "text/html", html)
            + f"--{boundary}--\r\n".encode()
        )


CRLF = "\r\n"


def _part(boundary: str, content_type: str, content: str) -> bytes:
    body = base64.encodebytes(content.encode()).replace(b"\n", b"\r\n")
    head = f"--{boundary}\r\nContent-Type: {content_type}; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    return head.encode() + body


def new_message_id(domain: str) -> str:
    """A unique Message-ID; chosen when a delivery is claimed, so even an uncertain one has it."""
    return make_msgid(domain=domain)


def build_transactional(mail: dict[str, Any], sender: Address, message_id: str) -> EmailMessage:
    """A transactional mail: the requesting service's words, the house template, no tracking."""
    language = mail.get("language") if mail.get("language") in ("nb", "en") else "nb"
    body = _MARKDOWN.render(_escape_markdown(str(mail["body_text"])))
    html = _PAGES.get_template("transactional.html").render(
        lang=language,
        subject=one_line(str(mail["subject"])),
        body=body,
        action_url=mail.get("action_url"),
        action_label=mail.get("action_label"),
    )
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = Address(
        display_name=one_line(str(mail.get("to_name") or "")), addr_spec=one_line(str(mail["to_address"]))
    )
    msg["Subject"] = one_line(str(mail["subject"]))
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to it
    msg.set_content(str(mail["body_text"]), charset="utf-8")
    msg.add_alternative(html, subtype="html", charset="utf-8")
    for attachment in mail.get("attachments") or []:
        _attach(msg, _for_recipient(attachment, mail))
    # Last: set_content and the multipart conversions move or drop Content-* headers set before.
    msg["Content-Language"] = language
    return msg


def _for_recipient(attachment: dict[str, Any], mail: dict[str, Any]) -> dict[str, Any]:
    """A calendar entry with her as its ATTENDEE, when the requester asked (it does not know her address)."""
    if not attachment.get("add_recipient_as_attendee") or not str(attachment["content_type"]).startswith(
        "text/calendar"
    ):
        return attachment
    content = ical.with_attendee(str(attachment["content"]), one_line(str(mail["to_address"])), mail.get("to_name"))
    return {**attachment, "content": content}


def _attach(msg: EmailMessage, attachment: dict[str, Any]) -> None:
    """A text attachment (text/calendar; method=REQUEST, or an SVG image), its parameters kept, base64."""
    main, _, params = str(attachment["content_type"]).partition(";")
    maintype, subtype = main.strip().split("/", 1)  # the contract allows text types and SVG
    if msg.get_content_maintype() != "multipart" or msg.get_content_subtype() != "mixed":
        msg.make_mixed()
    part = EmailMessage(policy=SMTP)
    filename = one_line(str(attachment["filename"]))
    if maintype == "text":
        part.set_content(str(attachment["content"]), subtype=subtype, charset="utf-8", cte="base64",
                         disposition="attachment", filename=filename)  # fmt: skip
    else:
        part.set_content(str(attachment["content"]).encode(), maintype=maintype, subtype=subtype,
                         disposition="attachment", filename=filename)  # fmt: skip
    for param in filter(None, (p.strip() for p in params.split(";"))):
        name, _, value = param.partition("=")
        part.set_param(name.strip(), value.strip())
    msg.attach(part)


def _escape_markdown(text: str) -> str:
    # The text is plain: keep its line breaks, and let no character act as Markdown.
    escaped = re.sub(r"([\\`*_{}\[\]()#+\-.!<>|~])", r"\\\1", text)
    return escaped.replace("\n", "  \n")
