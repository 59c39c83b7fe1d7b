"""Consent settings: environment variables prefixed CONSENT_ (see docs/configuration.md)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from alumni_kit.settings import ServiceSettings

DEFAULT_PURPOSES = ("newsletter", "events", "evu", "research", "career", "networks")


class ConsentSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CONSENT_", extra="ignore")

    database_url: str = "postgresql://consent:consent-dev@127.0.0.1:55432/consent"
    http_port: int = 8102
    # Where members reach the preference centre; links in e-mails start with it.
    public_base_url: str = Field("http://127.0.0.1:8102", pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    # What the university asks consent for (JSON list in the environment).
    # Every purpose needs a notice text: built in for these, others in notices_file.
    purposes: tuple[str, ...] = Field(DEFAULT_PURPOSES, min_length=1)
    # JSON {purpose: {"nb": {"title", "text"}, "en": {...}}} adding or replacing notice texts.
    notices_file: Path | None = None
    # Version label of the notice texts; the ledger also stores each text's SHA-256.
    notice_version: str = Field("2026-11", min_length=1, max_length=40)
    # Invite every new member with an e-mail address to the preference centre, once.
    invitations_enabled: bool = True
    invitation_link_days: int = Field(30, ge=1, le=365)
    preference_link_days: int = Field(7, ge=1, le=365)
    confirmation_link_hours: int = Field(72, ge=1, le=24 * 30)
    group_id: str = "consent"
