"""What a member may put in her profile, checked without I/O.

`validate_profile` turns a submitted form (or JSON body) into a `ProfileInput`
or a list of `FieldError`s; each error has a code that profile_text.py words
in bokmål and English, plus the numbers the wording needs.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, get_args

from email_validator import EmailNotValidError, validate_email

from usn_schemas.vocabulary import Language as Language  # re-exported for this service
from usn_schemas.volunteer import OFFER_TYPES, OfferType

# What members may say they want from USN (the survey's top answers); a fixed list, worded in profile_text.py.
Interest = Literal[
    "research-news",
    "continuing-education",
    "library-access",
    "career-guidance",
    "discounts",
    "social-events",
]
INTERESTS: tuple[str, ...] = get_args(Interest)
MAX_EMAIL = 254  # RFC 5321's limit on a forward path
MAX_TEXT = 200
_PHONE_CHARS = re.compile(r"^\+?[0-9 ().-]+$")


@dataclass(frozen=True)
class FieldError:
    field: str
    code: str
    params: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class ProfileInput:
    email: str
    phone: str | None
    employer: str | None
    job_title: str | None
    language: Language
    interests: frozenset[str]
    offers: frozenset[OfferType]


class UnknownChoiceError(ValueError):
    """A box no page offers: a tampered form, refused as a whole (no partial save)."""


def validate_profile(
    email: str,
    phone: str,
    employer: str,
    job_title: str,
    language: str,
    interests: Iterable[str],
    offers: Iterable[str],
) -> ProfileInput | list[FieldError]:
    errors: list[FieldError] = []
    clean_email = _email(email.strip(), errors)
    clean_phone = _phone(phone.strip(), errors)
    clean_employer = _text("employer", employer, errors)
    clean_title = _text("job_title", job_title, errors)
    if language not in ("nb", "en"):
        errors.append(FieldError("language", "language_unknown"))
    chosen_interests, chosen_offers = _choices(interests, INTERESTS, "interest"), _choices(offers, OFFER_TYPES, "offer")
    if errors:
        return errors
    return ProfileInput(
        email=clean_email or "",
        phone=clean_phone,
        employer=clean_employer,
        job_title=clean_title,
        language="en" if language == "en" else "nb",
        interests=frozenset(chosen_interests),
        offers=frozenset(o for o in OFFER_TYPES if o in chosen_offers),
    )


def _email(value: str, errors: list[FieldError]) -> str | None:
    if not value:
        errors.append(FieldError("email", "email_required"))
        return None
    if len(value) > MAX_EMAIL:
        errors.append(FieldError("email", "email_too_long", {"max": MAX_EMAIL, "length": len(value)}))
        return None
    if value.count("@") != 1:
        errors.append(FieldError("email", "email_at_sign"))
        return None
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        errors.append(FieldError("email", "email_domain" if "." not in value.split("@")[1] else "email_invalid"))
        return None


def normalise_phone(value: str) -> str | FieldError:
    """'+47 912 34 567', '0047 91234567' or '91234567' → '+4791234567'; else why not."""
    if not _PHONE_CHARS.match(value):
        return FieldError("phone", "phone_chars")
    digits = re.sub(r"\D", "", value)
    if value.startswith("+"):
        international = digits
    elif digits.startswith("00"):
        international = digits[2:]
    elif len(digits) == 8:  # a Norwegian number written without country code
        international = "47" + digits
    else:
        return FieldError("phone", "phone_country", {"length": len(digits)})
    if not 8 <= len(international) <= 15 or international.startswith("0"):
        return FieldError("phone", "phone_length", {"length": len(international)})
    if international.startswith("47") and len(international) != 10:
        return FieldError("phone", "phone_norwegian", {"length": len(international) - 2})
    return "+" + international


def _phone(value: str, errors: list[FieldError]) -> str | None:
    if not value:
        return None
    result = normalise_phone(value)
    if isinstance(result, FieldError):
        errors.append(result)
        return None
    return result


def _text(name: str, value: str, errors: list[FieldError]) -> str | None:
    value = " ".join(value.split())  # collapses runs of white space, line breaks included
    if len(value) > MAX_TEXT:
        errors.append(FieldError(name, "too_long", {"max": MAX_TEXT, "length": len(value)}))
        return None
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in value):
        errors.append(FieldError(name, "control_chars"))
        return None
    return value or None


def _choices(values: Iterable[str], allowed: tuple[str, ...], what: str) -> set[str]:
    chosen = set(values)
    unknown = chosen - set(allowed)
    if unknown:
        shown = ", ".join(sorted(u[:40] for u in unknown))
        raise UnknownChoiceError(f"unknown {what}: {shown}; one of: {', '.join(allowed)}")
    return chosen
