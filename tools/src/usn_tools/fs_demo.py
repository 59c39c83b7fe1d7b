"""A deterministic synthetic FS export shaped like USN (docs/architecture.md §1).

Four faculties with realistic programmes (the four pilot programmes among
them), seven campuses, graduation years 2010-2025, Norwegian names with æøå and
hyphens, some people with two degrees, some without e-mail or phone. The same
seed always gives the same people, events and event ids.
"""

from __future__ import annotations

import random
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

CAMPUSES = ("Bø", "Drammen", "Kongsberg", "Notodden", "Porsgrunn", "Ringerike", "Vestfold")


@dataclass(frozen=True)
class Prog:
    code: str
    name: str
    faculty: str
    level: str
    campuses: tuple[str, ...]


PROGRAMMES: tuple[Prog, ...] = (
    # The pilot programmes (Aug 2024), one per faculty.
    Prog("BSL", "Bachelor i skipsfart og logistikk", "TNM", "bachelor", ("Vestfold",)),
    Prog("BØL", "Bachelor i økonomi og ledelse", "HH", "bachelor", ("Bø", "Drammen", "Ringerike", "Vestfold")),
    Prog("BOPT", "Bachelor i optometri", "HS", "bachelor", ("Kongsberg",)),
    Prog("GLU", "Grunnskolelærerutdanning", "HIU", "master", ("Drammen", "Notodden", "Porsgrunn", "Vestfold")),
    Prog("MØA", "Master i økonomi og administrasjon", "HH", "master", ("Bø", "Drammen", "Vestfold")),
    Prog("BREV", "Bachelor i regnskap og revisjon", "HH", "bachelor", ("Drammen", "Ringerike")),
    Prog("BING-EL", "Bachelor i ingeniørfag – elektro", "TNM", "bachelor", ("Kongsberg", "Porsgrunn", "Vestfold")),
    Prog("MSE", "Master i systems engineering", "TNM", "master", ("Kongsberg",)),
    Prog("MNAUT", "Master i maritim ledelse", "TNM", "master", ("Vestfold",)),
    Prog("PHD-TEK", "Ph.d. i teknologi", "TNM", "phd", ("Porsgrunn", "Kongsberg")),
    Prog("BSPL", "Bachelor i sykepleie", "HS", "bachelor", ("Drammen", "Porsgrunn", "Vestfold", "Kongsberg")),
    Prog("BVPL", "Bachelor i vernepleie", "HS", "bachelor", ("Drammen", "Porsgrunn")),
    Prog("MHELSE", "Master i helsevitenskap", "HS", "master", ("Porsgrunn", "Drammen")),
    Prog("BBHG", "Bachelor i barnehagelærerutdanning", "HIU", "bachelor", ("Drammen", "Notodden", "Porsgrunn")),
    Prog("BIDR", "Bachelor i idrett, fysisk aktivitet og helse", "HIU", "bachelor", ("Bø",)),
    Prog("MKULT", "Master i kultur- og naturbasert reiseliv", "HIU", "master", ("Bø",)),
    Prog("EVU-LED", "Videreutdanning i ledelse", "HH", "evu", ("Drammen", "Vestfold")),
    Prog("EVU-VEIL", "Videreutdanning i veiledning", "HIU", "evu", ("Notodden", "Vestfold")),
    Prog("EVU-PSY", "Videreutdanning i psykisk helsearbeid", "HS", "evu", ("Porsgrunn",)),
    Prog("EXCH-TNM", "Exchange studies, technology", "TNM", "exchange", ("Kongsberg",)),
    Prog("EXCH-HH", "Exchange studies, business", "HH", "exchange", ("Bø",)),
)
MASTERS_AFTER = {"HH": "MØA", "TNM": "MSE", "HS": "MHELSE", "HIU": "MKULT"}
_BY_CODE = {p.code: p for p in PROGRAMMES}
CREDITS = {"bachelor": 180, "master": 120, "phd": 180, "evu": 30, "exchange": 30}

GIVEN = (
    "Åse",
    "Øystein",
    "Ingrid",
    "Kari",
    "Ola",
    "Bjørn",
    "Sigrid",
    "Håkon",
    "Solveig",
    "Jørgen",
    "Marit",
    "Nils",
    "Ragnhild",
    "Tor",
    "Astrid",
    "Eirik",
    "Liv",
    "Knut",
    "Gunhild",
    "Lars",
    "Siri",
    "Mathias",
    "Nora",
    "Emma",
    "Jonas",
    "Sofie",
    "Aleksander",
    "Thea",
    "Magnus",
    "Ida",
    "Mohammed",
    "Zofia",
    "Anne-Lise",
    "Per Øyvind",
    "Hélène",
    "José",
    "Märta",
    "Tuva",
    "Sindre",
    "Vilde",
)
FAMILY = (
    "Hansen",
    "Johansen",
    "Olsen",
    "Larsen",
    "Andersen",
    "Pedersen",
    "Nilsen",
    "Kristiansen",
    "Jensen",
    "Karlsen",
    "Johnsen",
    "Pettersen",
    "Eriksen",
    "Berg",
    "Haugen",
    "Hagen",
    "Johannessen",
    "Dahl",
    "Ødegård",
    "Bråten",
    "Sæther",
    "Løvås",
    "Aasen",
    "Myhre",
    "Strøm",
    "Fjellheim",
    "Nygård",
    "Sørensen",
    "Halvorsen-Bakke",
    "Tveit",
    "Lie",
    "Aune",
    "Kowalski",
    "Nguyen",
    "Ali",
    "Müller",
    "Grønli",
    "Vik",
)


def _ascii(text: str) -> str:
    folded = text.lower().replace("ø", "o").replace("æ", "ae").replace("å", "a")
    folded = unicodedata.normalize("NFKD", folded).encode("ascii", "ignore").decode()
    return "".join(c for c in folded if c.isalnum() or c == "-").strip("-") or "x"


@dataclass(frozen=True)
class Person:
    student_number: str
    given_name: str
    family_name: str
    email: str | None
    phone: str | None


def _person(rng: random.Random, index: int) -> Person:
    given, family = rng.choice(GIVEN), rng.choice(FAMILY)
    email = f"{_ascii(given)}.{_ascii(family)}{index}@example.no" if rng.random() < 0.85 else None
    phone = f"+47{rng.choice('49')}{rng.randrange(10**6, 10**7)}" if rng.random() < 0.6 else None
    return Person(f"{100000 + index}", given, family, email, phone)


def _graduation(rng: random.Random, person: Person, prog: Prog, year: int, now: datetime) -> dict[str, Any]:
    day = date(year, 6, rng.randint(10, 25)) if rng.random() < 0.8 else date(year, 12, rng.randint(5, 20))
    data: dict[str, Any] = {
        "student_number": person.student_number,
        "given_name": person.given_name,
        "family_name": person.family_name,
        "programme_code": prog.code,
        "programme_name": prog.name,
        "faculty": prog.faculty,
        "campus": rng.choice(prog.campuses),
        "degree_level": prog.level,
        "graduation_date": day.isoformat(),
        "credits": CREDITS[prog.level],
    }
    if person.email:
        data["email"] = person.email
    if person.phone:
        data["phone"] = person.phone
    return {
        "specversion": "1.0",
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "source": "/fs",
        "type": "no.usn.fs.graduated.v1",
        "time": now.isoformat(),
        "subject": person.student_number,
        "datacontenttype": "application/json",
        "data": data,
    }


def graduation_events(count: int, seed: int = 2024) -> Iterator[dict[str, Any]]:
    """`count` graduated v1 events; about one person in eight has a second (master) degree."""
    rng = random.Random(seed)
    now = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    produced, index = 0, 0
    while produced < count:
        person = _person(rng, index)
        index += 1
        first = rng.choice(PROGRAMMES)
        year = rng.randint(2010, 2025)
        yield _graduation(rng, person, first, year, now)
        produced += 1
        if produced < count and first.level == "bachelor" and rng.random() < 0.25 and year <= 2023:
            master = _BY_CODE[MASTERS_AFTER[first.faculty]]
            yield _graduation(rng, person, master, year + 2, now)
            produced += 1
