"""Membership settings: environment variables prefixed MEMBERSHIP_ (see docs/configuration.md)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from alumni_kit.settings import ServiceSettings
from usn_schemas.graduated import DegreeLevel


class MembershipSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEMBERSHIP_", extra="ignore")

    database_url: str = "postgresql://membership:membership-dev@127.0.0.1:55432/membership"
    http_port: int = 8101
    # The eligibility policy (ARCHITECTURE.md §1): which completed degrees make a member.
    # USN decides; exchange students are a candidate group, off by default.
    eligible_degree_levels: frozenset[DegreeLevel] = Field(
        frozenset({"bachelor", "master", "phd", "evu"}), min_length=1
    )
    group_id: str = "membership"
