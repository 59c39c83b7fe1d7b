"""The notice texts people see before they choose, and their fingerprints.

The ledger stores the version and the SHA-256 of the exact text shown (in the
language shown), and the `notices` table keeps every text ever shown under its
hash, so a proof years later can quote what the person agreed to even after
the wording changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from usn_schemas.vocabulary import Language as Language  # re-exported for this service

LANGUAGES: tuple[Language, ...] = ("nb", "en")

BUILT_IN: dict[str, dict[str, dict[str, str]]] = {
    "newsletter": {
        "nb": {
            "title": "Nyhetsbrev",
            "text": "USN sender deg nyhetsbrev fra universitetet og fakultetet ditt, "
            "omtrent en gang i måneden. Du kan melde deg av når som helst.",
        },
        "en": {
            "title": "Newsletters",
            "text": "USN sends you newsletters from the university and your faculty, "
            "about once a month. You can unsubscribe at any time.",
        },
    },
    "events": {
        "nb": {
            "title": "Arrangementer",
            "text": "USN inviterer deg til alumnitreff, fagdager og andre arrangementer på campus og digitalt.",
        },
        "en": {
            "title": "Events",
            "text": "USN invites you to alumni gatherings, professional days and other events, on campus and online.",
        },
    },
    "evu": {
        "nb": {
            "title": "Etter- og videreutdanning",
            "text": "USN forteller deg om nye etter- og videreutdanningstilbud innen fagområdene dine.",
        },
        "en": {
            "title": "Continuing education",
            "text": "USN tells you about new continuing-education courses in your fields.",
        },
    },
    "research": {
        "nb": {
            "title": "Forskning og undersøkelser",
            "text": "USN kan be deg svare på undersøkelser og delta i forskning. "
            "Hver forespørsel forteller hva svarene brukes til.",
        },
        "en": {
            "title": "Research and surveys",
            "text": "USN may ask you to answer surveys and take part in research. "
            "Each request says what the answers are used for.",
        },
    },
    "career": {
        "nb": {
            "title": "Karriere og mentorordning",
            "text": "USN kontakter deg om mentorordninger, karriereveiledning og gjesteforelesninger.",
        },
        "en": {
            "title": "Career and mentoring",
            "text": "USN contacts you about mentoring, career guidance and guest lectures.",
        },
    },
    "networks": {
        "nb": {
            "title": "Faglige nettverk",
            "text": "I nettverkene du blir med i, kan fakultetets alumnikontakt og alumniteam se "
            "kontaktopplysningene dine og kontakte deg om nettverkets aktiviteter.",
        },
        "en": {
            "title": "Professional networks",
            "text": "In the networks you join, your faculty's alumni contact and alumni team may see "
            "your contact details and contact you about the network's activities.",
        },
    },
}


@dataclass(frozen=True)
class NoticeRef:
    """What the ledger records of a notice: its version label and the text's fingerprint."""

    version: str
    sha256: str


@dataclass(frozen=True)
class Notice:
    purpose: str
    language: Language
    version: str
    title: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def ref(self) -> NoticeRef:
        return NoticeRef(self.version, self.sha256)


class NoticeBook:
    """Notice texts for the configured purposes, in both languages."""

    def __init__(self, purposes: tuple[str, ...], version: str, overrides: Path | None = None) -> None:
        texts = {**BUILT_IN, **(json.loads(overrides.read_text()) if overrides else {})}
        missing = [f"{p}/{lang}" for p in purposes for lang in LANGUAGES if lang not in texts.get(p, {})]
        if missing:
            raise ValueError(f"no notice text for {', '.join(missing)}: add them to CONSENT_NOTICES_FILE")
        self.purposes = purposes
        self.version = version
        self._notices = {
            (p, lang): Notice(p, lang, version, texts[p][lang]["title"], texts[p][lang]["text"])
            for p in purposes
            for lang in LANGUAGES
        }

    def get(self, purpose: str, language: Language) -> Notice:
        return self._notices[(purpose, language)]

    def all(self) -> list[Notice]:
        return list(self._notices.values())
