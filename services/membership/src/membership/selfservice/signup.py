"""Pre-alumni sign-up: a current student proves her student number by clicking a
link sent to her student address (<student number>@<student_mail_domain>), then
becomes a member with status 'pre-alumni'. A later `graduated` for the same
student number finds that member (domain.apply_graduation) instead of making a new one.

Nothing is recorded twice: the per-student-number lock the graduated handler
takes also serialises sign-ups, a second sign-up while one waits or after she
is a member is refused (409), and a link confirms its sign-up once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from pydantic import ConfigDict, EmailStr, Field

from alumni_kit.db import Conn
from alumni_kit.outbox import add_to_outbox
from alumni_kit.text_input import TextInput
from membership.members import domain, publishing, repository
from membership.selfservice import mails, retention
from membership.selfservice.links import Links
from membership.web.forms import FlowError
from usn_schemas.ids import new_id
from usn_schemas.vocabulary import Language


class SignupForm(TextInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    student_number: str = Field(min_length=1, max_length=20)
    private_email: EmailStr = Field(max_length=254)
    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    language: Language = "nb"


@dataclass(frozen=True)
class SignupRules:
    student_number: re.Pattern[str]
    student_mail_domain: str
    link_hours: int
    rejected_days: int

    def student_address(self, student_number: str) -> str:
        return f"{student_number}@{self.student_mail_domain}"

    def check(self, form: SignupForm) -> None:
        """422 with a precise message for a student number or address that cannot be verified."""
        if not self.student_number.fullmatch(form.student_number):
            raise FlowError(422, "student_number_format", domain=self.student_mail_domain)
        if form.private_email.lower().endswith("@" + self.student_mail_domain):
            raise FlowError(422, "private_email_is_student", domain=self.student_mail_domain)


@dataclass(frozen=True)
class Requested:
    signup_id: str
    sent_to: str
    expires_at: datetime


_PENDING = """
SELECT expires_at FROM signups
 WHERE student_number = $1 AND confirmed_at IS NULL AND expires_at > now()"""

_INSERT = """
INSERT INTO signups (signup_id, student_number, private_email, given_name, family_name, language, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)"""


async def request_signup(conn: Conn, form: SignupForm, rules: SignupRules, links: Links) -> Requested:
    """Record the sign-up and ask for the verification mail, or raise FlowError (409)."""
    rules.check(form)
    async with conn.transaction():
        await retention.purge_stale(conn, rules.rejected_days)
        await repository.lock_student_numbers(conn, [form.student_number])
        if await repository.member_id_of_student(conn, form.student_number) is not None:
            raise FlowError(409, "already_member")
        # Logins go by e-mail: two members with one address would leave one unable to log in.
        if await repository.member_id_by_email(conn, form.private_email) is not None:
            raise FlowError(409, "email_taken")
        pending = await conn.fetchval(_PENDING, form.student_number)
        if pending is not None:
            raise FlowError(409, "signup_pending", until=f"{pending:%Y-%m-%d %H:%M} UTC")
        signup_id, ttl = new_id(), rules.link_hours * 3600
        expires_at = datetime.now(UTC) + timedelta(seconds=ttl)
        await conn.execute(
            _INSERT,
            signup_id,
            form.student_number,
            form.private_email,
            form.given_name,
            form.family_name,
            form.language,
            expires_at,
        )
        address = rules.student_address(form.student_number)
        url = links.make("confirm-signup", signup_id, signup_id, ttl, form.language)
        mail = mails.mail(
            "email-verification",
            mails.SIGNUP,
            form.language,
            (address, form.given_name),
            url,
            expires_at,
            # The sign-up id becomes her member id: the mailer files the request under
            # it, so her erasure (or the sign-up's expiry) reaches the stored mail too.
            signup_id,
            hours=rules.link_hours,
            student_number=form.student_number,
        )
        await add_to_outbox(conn, [await publishing.mail_request(conn, signup_id, mail)])
    return Requested(signup_id, address, expires_at)


async def get_signup(conn: Conn, signup_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM signups WHERE signup_id = $1", signup_id)


async def confirm_signup(conn: Conn, signup_id: str) -> str:
    """Make the sign-up's member ('pre-alumni', member id = sign-up id) and publish
    member-registered; returns the member id. FlowError 404/409 when there is nothing to do."""
    async with conn.transaction():
        row = await conn.fetchrow("SELECT * FROM signups WHERE signup_id = $1 FOR UPDATE", signup_id)
        if row is None:
            raise FlowError(404, "unknown_link_text")
        if row["confirmed_at"] is not None:
            raise FlowError(409, "used_link_text")
        await repository.lock_student_numbers(conn, [row["student_number"]])
        if await repository.member_id_of_student(conn, row["student_number"]) is not None:
            raise FlowError(409, "already_member")
        if await repository.member_id_by_email(conn, row["private_email"]) is not None:
            raise FlowError(409, "email_taken")
        person = domain.Person(row["given_name"], row["family_name"], row["private_email"])
        member = domain.register_pre_alumnus(signup_id, row["student_number"], person)
        fact = await publishing.member_registered(conn, member)
        await repository.save_members(conn, [member])
        await conn.execute("UPDATE signups SET confirmed_at = now(), member_id = $1 WHERE signup_id = $1", signup_id)
        await add_to_outbox(conn, [fact])
    return member.member_id
