"""Settings every service shares; each service subclasses with its own env prefix."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Read from the environment (prefix set per service, e.g. MEMBERSHIP_)."""

    model_config = SettingsConfigDict(extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:19092"
    database_url: str = "postgresql://127.0.0.1:55432/postgres"
    http_host: str = "127.0.0.1"
    http_port: int = 8100
    # Request bodies over this are answered 413 without being read whole (alumni_kit.body_limit);
    # the few routes that take more (a campaign, a consent import) name their own larger limit.
    http_max_body_bytes: int = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Largest batch one consumer transaction handles; bigger batches mean fewer
    # round trips on a backfill, smaller ones a shorter wait per event.
    batch_max_records: int = Field(500, ge=1, le=10_000)
    batch_timeout_ms: int = Field(10, ge=1, le=10_000)
    # How long the broker may hold a fetch open waiting for data. A record that
    # lands on a partition outside the fetch in flight waits for that fetch to
    # return, so this bounds the latency a trickle of events can see (500 ms by
    # default in the client); idle cost is one small request per interval.
    fetch_max_wait_ms: int = Field(50, ge=1, le=10_000)
    # Offsets are committed after the effects; how often is a trade of broker round
    # trips against how much a crash redelivers (the inbox drops the repeats).
    # Also the longest an idle partition's committed offset lags what was applied
    # (a background flush commits it; before, only the next batch did).
    commit_interval_ms: int = Field(250, ge=0, le=60_000)
    # A record that fails for a reason that is not transient is tried alone this many
    # times, then dead-lettered as processing-error (docs/guarantees.md).
    consumer_max_attempts: int = Field(3, ge=1, le=100)
    outbox_batch_size: int = Field(2000, ge=1, le=50_000)
    # The relay is woken by NOTIFY at each commit; this poll only covers a lost notification.
    outbox_poll_seconds: float = Field(1.0, gt=0, le=60)
    # Times the broker may refuse one outbox row (too large for its topic, invalid)
    # before the relay quarantines it and publishes the rows behind it.
    outbox_max_attempts: int = Field(3, ge=1, le=100)
    # How often each consumer's lag (alumni_consumer_lag_messages) is measured: one
    # ListOffsets request per consumed topic per interval.
    lag_interval_seconds: float = Field(5.0, gt=0, le=300)
    db_pool_max: int = Field(8, ge=2, le=100)
    # HMAC keys for member links and staff tokens ("kid:secret,kid:secret"); the
    # first signs, all verify, so keys can be rotated without logging anyone out.
    # Shared by every service (one env var, no service prefix).
    signing_keys: SecretStr = Field(
        SecretStr("dev:local-development-only-change-me"),
        validation_alias=AliasChoices("ALUMNI_SIGNING_KEYS", "signing_keys"),
    )
    # Membership holds the per-member keys that open personal data in events
    # (crypto-shredding). Keys are cached in memory this long at most: the bound
    # on how long a service can still read a member's messages after her erasure.
    membership_url: str = Field(
        "http://127.0.0.1:8101", validation_alias=AliasChoices("ALUMNI_MEMBERSHIP_URL", "membership_url")
    )
    key_cache_seconds: float = Field(60.0, ge=0, le=3600)
    # Prepended to every topic name: isolates test runs and staging tenants on one cluster.
    topic_prefix: str = Field("", validation_alias=AliasChoices("ALUMNI_TOPIC_PREFIX", "topic_prefix"))
    log_level: str = "INFO"
    # Swagger UI at /docs, its assets served by the service itself (no CDN). Off in
    # production if the API's shape should not be browsable (/openapi.json stays).
    api_docs_enabled: bool = True
    # Spans: "none" (off), "console" (printed, for development) or "otlp" (OTLP/HTTP to
    # OTEL_EXPORTER_OTLP_ENDPOINT, the SDK's standard variables; docs/configuration.md).
    otel_exporter: str = Field("none", pattern="^(none|console|otlp)$")
