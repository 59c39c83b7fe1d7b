"""The membership service: `create_app(settings)` builds it, nothing connects at import."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI

from alumni_kit.app import service_app
from alumni_kit.auth import TokenSigner, parse_keys
from alumni_kit.consent_view import CONSENT_VIEW_MIGRATIONS, consent_view_handler
from alumni_kit.consumer import BatchHandler
from alumni_kit.http import service_or_operator_caller, staff_principal
from alumni_kit.runtime import ServiceRuntime, Subscription
from membership.members.domain import EligibilityPolicy
from membership.members.handlers import MembershipMetrics, make_graduated_handler
from membership.members.routes import members_router
from membership.profile.networks_routes import networks_router
from membership.profile.repository import export_profile
from membership.profile.routes import profile_router
from membership.rights import keys
from membership.rights.export import member_section
from membership.rights.key_routes import key_router
from membership.rights.keys import KeyEncryption, LocalKeyRing
from membership.rights.routes import RightsDeps, member_rights_router, staff_rights_router
from membership.selfservice.export import export_signup
from membership.selfservice.routes import self_service_routers
from membership.settings import MembershipSettings
from usn_schemas.consent import ConsentGivenV1, ConsentWithdrawnV1
from usn_schemas.graduated import GraduatedV1
from usn_schemas.member import MemberErasedV1, MemberRegisteredV1, MemberUpdatedV1
from usn_schemas.registry import TOPIC_CONTRACTS
from usn_schemas.volunteer import VolunteerOfferedV1, VolunteerWithdrawnV1

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


def create_runtime(settings: MembershipSettings) -> ServiceRuntime:
    """The broker, its subscriptions and publications (also the AsyncAPI source)."""
    # The consent view: a network's member list shows contact details only where she consented.
    # Membership holds the keys: it reads them from its own table, never over HTTP.
    runtime = ServiceRuntime("membership", settings, MIGRATIONS, shared=CONSENT_VIEW_MIGRATIONS, keyring=LocalKeyRing)
    keys.use_key_encryption(KeyEncryption(settings.key_encryption_keys.get_secret_value()))
    if (
        "development-only"
        in settings.key_encryption_keys.get_secret_value() + settings.tombstone_pepper.get_secret_value()
    ):
        log.warning("MEMBERSHIP_KEY_ENCRYPTION_KEYS / _TOMBSTONE_PEPPER not set: public development values in use")
    handler: BatchHandler = make_graduated_handler(
        EligibilityPolicy(settings.eligible_degree_levels),
        MembershipMetrics(runtime.metrics.registry),
        settings.tombstone_pepper.get_secret_value().encode(),
    )
    runtime.subscribe(
        Subscription("graduated", settings.group_id, TOPIC_CONTRACTS["graduated"], handler),
        GraduatedV1,
        "Graduations from FS and other USN systems (pinned contract v1); key = student number.",
    )
    for topic, schema in (("consent-given", ConsentGivenV1), ("consent-withdrawn", ConsentWithdrawnV1)):
        runtime.subscribe(
            # Consent for contact may show up a moment later; graduations keep the short wait.
            Subscription(
                topic, settings.group_id, TOPIC_CONTRACTS[topic], consent_view_handler(), fetch_max_wait_ms=500
            ),
            schema,
            "Consent for contact about networks (email/sms × 'networks'), for network member lists.",
        )
    runtime.publishes("member-registered", MemberRegisteredV1, "A person qualified as a member for the first time.")
    runtime.publishes("member-updated", MemberUpdatedV1, "A member's facts changed, e.g. a second degree.")
    runtime.publishes(
        "member-erased", MemberErasedV1, "A member was erased (GDPR art. 17): every service deletes her rows."
    )
    runtime.publishes(
        "volunteer-offered", VolunteerOfferedV1, "A member offers to help (mentoring, guest lectures, …)."
    )
    runtime.publishes("volunteer-withdrawn", VolunteerWithdrawnV1, "A member no longer offers that help.")
    return runtime


def create_app(settings: MembershipSettings | None = None) -> FastAPI:
    settings = settings or MembershipSettings()
    runtime = create_runtime(settings)
    signer = TokenSigner(parse_keys(settings.signing_keys.get_secret_value()))

    # Data-subject rights: keys for the other services, access export, erasure.
    rights = RightsDeps(
        runtime,
        signer,
        settings.tombstone_pepper.get_secret_value().encode(),
        sections={"member": member_section, "sign_up_and_login": export_signup, "profile": export_profile},
        services=settings.export_services,
        group=settings.group_id,
    )
    routers = [
        members_router(runtime, staff_principal(signer)),
        profile_router(runtime, signer),
        *self_service_routers(runtime, settings, signer),  # sign-up, applications, login
        networks_router(runtime, staff_principal(signer), signer),
        key_router(runtime, service_or_operator_caller(signer), settings.key_clients, settings.key_operators),
        member_rights_router(rights),
        staff_rights_router(rights, staff_principal(signer)),
    ]
    return service_app(runtime, "USN Alumni membership", routers)
