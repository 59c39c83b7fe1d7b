"""Mailer settings: environment variables prefixed MAILER_ (see docs/configuration.md)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from alumni_kit.settings import ServiceSettings

DEFAULT_PURPOSES = ("newsletter", "events", "evu", "research", "career")


class MailerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MAILER_", extra="ignore")

    database_url: str = "postgresql://mailer:mailer-dev@127.0.0.1:55432/mailer"
    http_port: int = 8103
    group_id: str = "mailer"
    # Seven consumers polling every 50 ms cost the broker and the mailer a quarter core while a
    # campaign sends. On one broker connection a fetch returns as soon as any of its partitions
    # has data, so a longer idle wait does not delay a withdrawal that arrives.
    fetch_max_wait_ms: int = Field(500, ge=1, le=10_000)
    # The consent purposes a campaign may name (the consent service's list).
    purposes: tuple[str, ...] = Field(DEFAULT_PURPOSES, min_length=1)

    # --- SMTP relay the mailer hands messages to
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(2525, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = Field(30, gt=0, le=600)
    # Parallel SMTP connections (each sends one message at a time).
    smtp_connections: int = Field(8, ge=1, le=100)
    # Messages per second at most, over all connections; 0 = as fast as the relay takes them.
    rate_limit_per_second: float = Field(0, ge=0)
    # 4xx answers are retried with back-off this many times, then the delivery fails.
    max_attempts: int = Field(5, ge=1, le=50)
    retry_base_seconds: float = Field(30, gt=0, le=3600)
    # Deliveries claimed per round; twice this bounds the "uncertain" ones after a kill.
    claim_batch: int = Field(64, ge=1, le=5000)

    # --- campaign bodies are rendered in a child process under these bounds (rendering.py)
    # Wall-clock time for one campaign (normally a few milliseconds).
    render_timeout_seconds: float = Field(2.0, gt=0, le=60)
    # Rendered output, and the whole message for one recipient, at most this many bytes.
    render_max_bytes: int = Field(2 * 1024 * 1024, ge=64 * 1024, le=64 * 1024 * 1024)
    # Address space of each render worker (one idles at about 30 MiB).
    render_memory_mib: int = Field(256, ge=64, le=16384)

    # --- what the messages say about themselves
    from_address: str = "alumni@usn.no"
    from_name: str = "USN Alumni"
    message_id_domain: str = "alumni.usn.no"
    # VERP return path: bounce+<delivery>.<tag>@<bounce_domain>
    bounce_local_part: str = "bounce"
    bounce_domain: str = "bounces.alumni.usn.no"
    # List-Unsubscribe: the consent service's one-click URL, and a mailbox.
    consent_base_url: str = Field("http://127.0.0.1:8102", pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    unsubscribe_mailto: str = "unsubscribe@alumni.usn.no"
    unsubscribe_link_days: int = Field(400, ge=30, le=3650)
    # Click and open tracking links lead here.
    public_base_url: str = Field("http://127.0.0.1:8103", pattern=r"^https?://[^\s/]+(/[^\s]*)?$")

    # --- bounces: DSNs arrive over SMTP at this listener (the MX for bounce_domain)
    bounce_listen_host: str = "127.0.0.1"
    bounce_listen_port: int = Field(2526, ge=0, le=65535)  # 0: no listener in this process
    # Soft bounces (mailbox full, ...) to the same address before it is suppressed.
    soft_bounce_threshold: int = Field(3, ge=1, le=100)
    # Finished transactional mail keeps its address, name and links this long (bounces
    # arrive within days), then only its kind and state (retention.py).
    transactional_keep_days: int = Field(7, ge=1, le=365)
