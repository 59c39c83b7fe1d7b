"""Analytics settings: environment variables prefixed ANALYTICS_ (see docs/configuration.md)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from alumni_kit.settings import ServiceSettings
from analytics.rules import Weights


class AnalyticsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ANALYTICS_", extra="ignore")

    database_url: str = "postgresql://analytics:analytics-dev@127.0.0.1:55432/analytics"
    http_port: int = 8105
    # Secret pepper of the HMAC that re-keys an erased member's rows (rules.anonymous_key):
    # without it, her member id alone does not give her anonymous key back. Changing it
    # needs `alumni-analytics rebuild` (the stored keys were made under the old one).
    erasure_pepper: SecretStr = Field(SecretStr("local-development-only-analytics-pepper"), min_length=16)
    group_id: str = "analytics"
    # A rebuild reads more per round trip than the live consumers: it is a backfill.
    rebuild_batch_records: int = Field(5000, ge=1, le=100_000)
    # as_of generations kept (the oldest built is dropped beyond): bounds the disk that
    # `?as_of=` moments take; one is built at a time (analytics.rebuild.as_of_generation).
    as_of_keep: int = Field(8, ge=1, le=100)
    # Engagement (CASE's four modes; services/analytics/README.md): the weight each fact scores in its
    # mode. Written into the projection at apply time, so a changed weight takes effect
    # for the history after `alumni-analytics rebuild`.
    weight_opened: float = Field(1.0, ge=0, le=100)
    weight_clicked: float = Field(2.0, ge=0, le=100)
    weight_attended: float = Field(5.0, ge=0, le=100)
    weight_volunteer: float = Field(5.0, ge=0, le=100)
    # A member counts as engaged in a mode when her facts of the last `engagement_window_days`
    # in that mode score at least `engagement_threshold` (read side; services/analytics/README.md).
    engagement_window_days: int = Field(365, ge=1, le=3650)
    engagement_threshold: float = Field(1.0, gt=0, le=1000)

    def pepper(self) -> bytes:
        """The secret of erased members' anonymous keys (rules.anonymous_key)."""
        return self.erasure_pepper.get_secret_value().encode()

    def weights(self) -> Weights:
        """The engagement weights written into `engagement_facts` (rules.engagement_of)."""
        return Weights(self.weight_opened, self.weight_clicked, self.weight_attended, self.weight_volunteer)
