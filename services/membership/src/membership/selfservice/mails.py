"""The words of the mails membership asks the mailer to send, in bokmål and English."""

from __future__ import annotations

from datetime import datetime

from usn_schemas.mail import MailKind, TransactionalMail
from usn_schemas.vocabulary import Language as Language  # re-exported for this service

MailText = tuple[str, str, str]  # subject, body (str.format fields), button label

SIGNUP: dict[str, MailText] = {
    "nb": (
        "Bekreft innmeldingen i USN Alumni",
        "Hei {name}!\n\nNoen – forhåpentligvis du – vil melde studentnummer {student_number} inn i USN Alumni "
        "som pre-alumn. Åpne lenken og trykk «Bekreft» for å bekrefte at det er deg:\n\n{url}\n\n"
        "Lenken virker i {hours} timer og kan brukes én gang. Har du ikke bedt om dette, kan du se bort fra "
        "e-posten; da skjer ingenting.\n\nHilsen USN Alumni",
        "Bekreft innmeldingen",
    ),
    "en": (
        "Confirm your sign-up for USN Alumni",
        "Hi {name}!\n\nSomeone – hopefully you – wants to sign student number {student_number} up for USN Alumni "
        "as a pre-alumnus. Open the link and press “Confirm” to confirm it is you:\n\n{url}\n\n"
        "The link works for {hours} hours and only once. If you did not ask for this, ignore this e-mail; "
        "nothing will happen.\n\nBest regards, USN Alumni",
        "Confirm the sign-up",
    ),
}

APPLICATION: dict[str, MailText] = {
    "nb": (
        "Bekreft e-postadressen i søknaden til USN Alumni",
        "Hei {name}!\n\nTakk for søknaden om medlemskap i USN Alumni. Åpne lenken og trykk «Bekreft» for å "
        "bekrefte e-postadressen; først da blir søknaden behandlet:\n\n{url}\n\n"
        "Lenken virker i {hours} timer og kan brukes én gang.\n\nHilsen USN Alumni",
        "Bekreft e-postadressen",
    ),
    "en": (
        "Confirm the e-mail address of your USN Alumni application",
        "Hi {name}!\n\nThank you for applying for membership of USN Alumni. Open the link and press “Confirm” "
        "to confirm your e-mail address; only then is the application processed:\n\n{url}\n\n"
        "The link works for {hours} hours and only once.\n\nBest regards, USN Alumni",
        "Confirm the address",
    ),
}

LOGIN: dict[str, MailText] = {
    "nb": (
        "Logg inn på USN Alumni",
        "Hei {name}!\n\nHer er lenken for å logge inn på USN Alumni:\n\n{url}\n\n"
        "Den virker i {minutes} minutter og kan brukes én gang. Har du ikke bedt om den, kan du se bort fra "
        "e-posten.\n\nHilsen USN Alumni",
        "Logg inn",
    ),
    "en": (
        "Log in to USN Alumni",
        "Hi {name}!\n\nHere is your link to log in to USN Alumni:\n\n{url}\n\n"
        "It works for {minutes} minutes and only once. If you did not ask for it, ignore this e-mail.\n\n"
        "Best regards, USN Alumni",
        "Log in",
    ),
}


def mail(
    kind: MailKind,
    texts: dict[str, MailText],
    lang: Language,
    to: tuple[str, str],
    url: str,
    expires_at: datetime,
    member_id: str | None = None,
    **fields: object,
) -> TransactionalMail:
    """The mail `kind` to `to` = (address, name), its body filled with `url`, the name and `fields`."""
    subject, body, label = texts[lang]
    address, name = to
    return TransactionalMail(
        kind=kind,
        member_id=member_id,
        to_address=address,
        to_name=name,
        language=lang,
        subject=subject,
        body_text=body.format(name=name, url=url, **fields),
        action_url=url,
        action_label=label,
        expires_at=expires_at,
    )
