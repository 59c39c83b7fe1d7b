"""Applications under the eligibility policy: people not in FS who may qualify
(continuing-education students, staff, mentors, external supervisors, exchange
students; the list and its version label are settings) apply, verify their
e-mail address by link, and communications or the faculty's AK decides.

Each decision records who, when, why and under which policy version. Approval
makes a member with status 'associate' (member id = application id, so the
subject key of the verification mail carries over) and publishes
member-registered; a rejection publishes nothing about the person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import ConfigDict, EmailStr, Field

from alumni_kit.auth import FACULTIES, StaffPrincipal
from alumni_kit.db import Conn
from alumni_kit.outbox import add_to_outbox
from alumni_kit.text_input import TextInput
from membership.members import domain, publishing, repository
from membership.selfservice import mails, retention
from membership.selfservice.links import Links
from membership.web.forms import FlowError
from usn_schemas.graduated import Faculty
from usn_schemas.ids import new_id
from usn_schemas.vocabulary import Language

MAX_JUSTIFICATION = 2000
MAX_REASON = 1000
ApplicationStatus = Literal["unverified", "pending", "approved", "rejected"]
# Who decides: communications (every faculty) and the faculty's Alumnikontakt. The
# Alumniteam reads its faculty's queue; the advisory board sees analytics, not people.
DECIDING_ROLES = ("comms", "ak")
READING_ROLES = ("comms", "ak", "at")
_OUTCOME = {"approve": "approved", "reject": "rejected"}


class ApplicationForm(TextInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    email: EmailStr = Field(max_length=254)
    category: str = Field(min_length=1, max_length=60)
    faculty: Faculty
    justification: str = Field(min_length=10, max_length=MAX_JUSTIFICATION)
    language: Language = "nb"


class Decision(TextInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    decision: Literal["approve", "reject"]
    reason: str = Field(min_length=3, max_length=MAX_REASON)


@dataclass(frozen=True)
class Policy:
    categories: tuple[str, ...]
    version: str
    link_hours: int
    rejected_days: int


_OPEN = """
SELECT 1 FROM applications
 WHERE lower(email) = lower($1) AND (status = 'pending' OR (status = 'unverified' AND verify_expires_at > now()))"""
_INSERT = """
INSERT INTO applications (application_id, given_name, family_name, email, language, category, faculty,
                          justification, policy_version, verify_expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"""


async def apply(conn: Conn, form: ApplicationForm, policy: Policy, links: Links) -> tuple[str, str]:
    """Record the application and ask for the verification mail: (application id, address)."""
    if form.category not in policy.categories:
        raise FlowError(422, "unknown_category", allowed=", ".join(policy.categories))
    async with conn.transaction():
        await retention.purge_stale(conn, policy.rejected_days)
        # Two posts of one address at once must not both pass the check below.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('application:' || lower($1), 0))", form.email)
        if await conn.fetchval(_OPEN, form.email):
            raise FlowError(409, "application_open")
        application_id, ttl = new_id(), policy.link_hours * 3600
        expires_at = datetime.now(UTC) + timedelta(seconds=ttl)
        values = (form.given_name, form.family_name, form.email, form.language, form.category, form.faculty)
        await conn.execute(_INSERT, application_id, *values, form.justification, policy.version, expires_at)
        url = links.make("verify-application", application_id, application_id, ttl, form.language)
        to = (str(form.email), form.given_name)
        mail = mails.mail(
            "email-verification",
            mails.APPLICATION,
            form.language,
            to,
            url,
            expires_at,
            application_id,  # becomes her member id if approved: see signup.py
            hours=policy.link_hours,
        )
        await add_to_outbox(conn, [await publishing.mail_request(conn, application_id, mail)])
    return application_id, str(form.email)


async def get(conn: Conn, application_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM applications WHERE application_id = $1", application_id)
    return dict(row) if row is not None else None


async def verify(conn: Conn, application_id: str) -> None:
    """The click in the verification mail: the application joins the queue (once)."""
    async with conn.transaction():
        status = await conn.fetchval(
            "SELECT status FROM applications WHERE application_id = $1 FOR UPDATE", application_id
        )
        if status is None:
            raise FlowError(404, "unknown_link_text")
        if status != "unverified":
            raise FlowError(409, "used_link_text")
        await conn.execute(
            "UPDATE applications SET status = 'pending', verified_at = now() WHERE application_id = $1",
            application_id,
        )


_COLUMNS = """application_id::text, given_name, family_name, email, language, category, faculty, justification,
  policy_version, status, applied_at, verified_at, decided_at, decided_by, decided_role, decision_reason,
  decision_policy_version, member_id::text"""


async def queue(
    conn: Conn, status: ApplicationStatus, faculties: tuple[str, ...], limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    where = "FROM applications WHERE status = $1 AND faculty = ANY($2::text[])"
    total = await conn.fetchval(f"SELECT count(*) {where}", status, list(faculties))
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} {where} ORDER BY applied_at, application_id LIMIT $3 OFFSET $4",
        status,
        list(faculties),
        limit,
        offset,
    )
    return total, [dict(r) for r in rows]


def may_read(who: StaffPrincipal, faculty: str | None = None) -> None:
    """403 unless `who` may read applications (of `faculty`, when given)."""
    if who.role not in READING_ROLES:
        raise FlowError(403, "staff_role", role=who.role)
    if faculty is not None and faculty in FACULTIES and not who.may_see(faculty):
        raise FlowError(403, "staff_faculty", faculty=who.faculty)


def may_decide(who: StaffPrincipal) -> None:
    if who.role not in DECIDING_ROLES:
        raise FlowError(403, "staff_decide", role=who.role)


async def decide(
    conn: Conn, application_id: str, who: StaffPrincipal, decision: Decision, version: str
) -> dict[str, Any]:
    """Record `who`'s decision (once); approval makes an associate member. Returns the application."""
    may_decide(who)
    async with conn.transaction():
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM applications WHERE application_id = $1 FOR UPDATE", application_id
        )
        if row is None:
            raise FlowError(404, "staff_unknown")
        may_read(who, row["faculty"])
        _check_open(row)
        member_id = await _approve(conn, row, who, decision, version) if decision.decision == "approve" else None
        await conn.execute(
            """UPDATE applications SET status = $2, decided_at = now(), decided_by = $3, decided_role = $4,
                      decision_reason = $5, decision_policy_version = $6, member_id = $7 WHERE application_id = $1""",
            application_id,
            _OUTCOME[decision.decision],
            who.subject,
            who.role,
            decision.reason,
            version,
            member_id,
        )
    decided = await get(conn, application_id)
    assert decided is not None
    return decided


def _check_open(row: Any) -> None:
    if row["status"] in ("approved", "rejected"):
        raise FlowError(409, "staff_decided", outcome=row["status"], by=row["decided_by"], at=row["decided_at"])
    if row["status"] == "unverified":
        raise FlowError(409, "staff_unverified")


async def _approve(conn: Conn, row: Any, who: StaffPrincipal, decision: Decision, version: str) -> str:
    if await repository.member_id_by_email(conn, row["email"]) is not None:
        raise FlowError(409, "staff_already_member")
    person = domain.Person(row["given_name"], row["family_name"], row["email"])
    detail = {"category": row["category"], "faculty": row["faculty"], "policy_version": version, "by": who.subject}
    member = domain.register_associate(row["application_id"], person, detail)
    fact = await publishing.member_registered(conn, member)
    await repository.save_members(conn, [member])
    await add_to_outbox(conn, [fact])
    return member.member_id
