"""The two mails consent asks the mailer to send, in bokmål and English."""

from __future__ import annotations

from datetime import datetime

from alumni_kit.outbox import OutboxMessage
from alumni_kit.shredding import SubjectKey
from consent import SOURCE
from consent.subjects import Subject
from usn_schemas.mail import TransactionalMail, TransactionalMailRequestedV1

TOPIC = "transactional-mail-requested"

_INVITATION = {
    "nb": (
        "Velkommen i USN Alumni – velg hva du vil høre om",
        "Hei {name}!\n\nGratulerer med graden, og velkommen i alumninettverket til Universitetet i "
        "Sørøst-Norge. Vi sender deg ingenting før du har valgt det selv. Velg hva du vil høre om "
        "– nyhetsbrev, arrangementer, etter- og videreutdanning, forskning eller karriere:\n\n{url}\n\n"
        "Lenken er personlig og virker i {days} dager.\n\nHilsen USN Alumni",
        "Velg hva du vil høre om",
    ),
    "en": (
        "Welcome to USN Alumni – choose what you hear about",
        "Hi {name}!\n\nCongratulations on your degree, and welcome to the alumni network of the "
        "University of South-Eastern Norway. We send you nothing until you choose it. Choose what you "
        "want to hear about – newsletters, events, continuing education, research or career:\n\n{url}\n\n"
        "The link is personal and works for {days} days.\n\nBest regards, USN Alumni",
        "Choose what you hear about",
    ),
}

_CONFIRMATION = {
    "nb": (
        "Bekreft e-postadressen din for USN Alumni",
        "Hei {name}!\n\nDu har bedt om å få e-post fra USN Alumni om: {topics}.\n"
        "Bekreft ved å åpne lenken og trykke «Bekreft»:\n\n{url}\n\n"
        "Har du ikke bedt om dette, kan du se bort fra e-posten; da skjer ingenting.\n\nHilsen USN Alumni",
        "Bekreft",
    ),
    "en": (
        "Confirm your e-mail address for USN Alumni",
        "Hi {name}!\n\nYou asked to receive e-mail from USN Alumni about: {topics}.\n"
        "Confirm by opening the link and pressing “Confirm”:\n\n{url}\n\n"
        "If you did not ask for this, ignore this e-mail; nothing will happen.\n\nBest regards, USN Alumni",
        "Confirm",
    ),
}


def invitation(
    subject: Subject,
    url: str,
    days: int,
    expires_at: datetime,
    seal: SubjectKey,
    trace_headers: dict[str, str] | None = None,
) -> OutboxMessage:
    """`trace_headers`: the context of the member fact that caused it (the graduate's trace goes on)."""
    lang = subject.language_code
    title, body, label = _INVITATION[lang]
    name = subject.given_name or ("alumn" if lang == "nb" else "alumna/alumnus")
    text = body.format(name=name, url=url, days=days)
    return _request("consent-invitation", subject, lang, title, text, url, label, expires_at, seal, trace_headers)


def confirmation(
    subject: Subject, language: str, topics: list[str], url: str, expires_at: datetime, seal: SubjectKey
) -> OutboxMessage:
    lang = language if language in _CONFIRMATION else "nb"
    title, body, label = _CONFIRMATION[lang]
    text = body.format(name=subject.given_name or "", topics=", ".join(topics), url=url)
    return _request("consent-confirmation", subject, lang, title, text, url, label, expires_at, seal)


def _request(
    kind: str,
    subject: Subject,
    lang: str,
    title: str,
    text: str,
    url: str,
    label: str,
    expires_at: datetime,
    seal: SubjectKey,
    trace_headers: dict[str, str] | None = None,
) -> OutboxMessage:
    assert subject.email is not None
    mail = TransactionalMail.model_validate(
        {
            "kind": kind,
            "member_id": subject.member_id,
            "to_address": subject.email,
            "to_name": subject.given_name,
            "language": lang,
            "subject": title,
            "body_text": text,
            "action_url": url,
            "action_label": label,
            "expires_at": expires_at,
        }
    )
    event = TransactionalMailRequestedV1.create(subject=subject.member_id, data=mail, source=SOURCE)
    # Address, name and personal link are sealed with her key (crypto-shredding).
    return OutboxMessage(topic=TOPIC, key=subject.member_id, event=event, headers=trace_headers or {}, seal=seal)
