"""Membership settings: environment variables prefixed MEMBERSHIP_ (see docs/configuration.md)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from alumni_kit.settings import ServiceSettings
from usn_schemas.graduated import DegreeLevel


class MembershipSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEMBERSHIP_", extra="ignore")

    database_url: str = "postgresql://membership:membership-dev@127.0.0.1:55432/membership"
    http_port: int = 8101
    # The eligibility policy (docs/architecture.md §1): which completed degrees make a member.
    # USN decides; exchange students are a candidate group, off by default.
    eligible_degree_levels: frozenset[DegreeLevel] = Field(
        frozenset({"bachelor", "master", "phd", "evu"}), min_length=1
    )
    group_id: str = "membership"

    # ---- crypto-shredding and erasure (docs/erasure.md) ----
    # Key-encryption keys wrapping every per-subject key ("kid:secret,..."; the first
    # wraps, all unwrap; rotate by prepending a new one and running `python -m membership.rights.keys rewrap`).
    key_encryption_keys: SecretStr = SecretStr("dev:local-development-only-key-encryption-key-change-me")
    # Secret pepper of the HMAC under which an erased member's student number is
    # kept, so replayed old graduations are recognised without keeping the number.
    tombstone_pepper: SecretStr = Field(SecretStr("local-development-only-tombstone-pepper"), min_length=16)
    # The services that may fetch members' keys (their service tokens name them).
    key_clients: frozenset[str] = frozenset({"consent", "mailer", "events", "analytics", "usn-tools"})
    # The operators (staff ids of their operator tokens, `alumni-token operator`) who may open
    # sealed fields in a replay (`alumni replay --open`); none by default.
    key_operators: frozenset[str] = frozenset()
    # The other services' access-export endpoints (name=url), gathered into one download.
    export_services: dict[str, str] = Field({"consent": "http://127.0.0.1:8102", "mailer": "http://127.0.0.1:8103"})

    # ---- sign-up, applications, login (docs/membership.md) ----
    # Where members reach the service; links in e-mails start with it. https → Secure cookies.
    public_base_url: str = Field("http://127.0.0.1:8101", pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    # A current student proves her student number by a link sent to <student number>@<this domain>.
    student_mail_domain: str = Field("usn.no", pattern=r"^[a-z0-9.-]+\.[a-z]{2,}$")
    # What a student number looks like (FS: digits); checked before any mail is sent.
    student_number_pattern: str = Field(r"^[0-9]{6,7}$", min_length=1, max_length=200)
    signup_link_hours: int = Field(24, ge=1, le=24 * 14)
    # Who may apply without a degree in FS (the eligibility policy), and its version label,
    # recorded with every application and decision.
    application_categories: tuple[str, ...] = Field(
        ("continuing-education", "staff", "mentor", "external-supervisor", "exchange-student"), min_length=1
    )
    eligibility_policy_version: str = Field("2026-1", min_length=1, max_length=40)
    application_link_hours: int = Field(72, ge=1, le=24 * 14)
    # A rejected applicant is not a member: her application goes after this many days (retention.py).
    rejected_application_days: int = Field(365, ge=1, le=3650)
    # A magic link is short-lived: it is as good as a password until used.
    login_link_seconds: int = Field(15 * 60, ge=1, le=24 * 3600)
    session_hours: int = Field(8, ge=1, le=24 * 30)
