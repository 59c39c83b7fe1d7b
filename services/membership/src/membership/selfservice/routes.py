"""The routers of sign-up, applications and login, built for create_app in one call."""

from __future__ import annotations

from fastapi import APIRouter

from alumni_kit.auth import TokenSigner
from alumni_kit.http import staff_principal
from alumni_kit.runtime import ServiceRuntime
from membership.selfservice.applications_routes import applications_router
from membership.selfservice.links import Links
from membership.selfservice.login_routes import login_router
from membership.selfservice.signup_routes import signup_router
from membership.settings import MembershipSettings
from membership.web.flow import Web


def self_service_routers(runtime: ServiceRuntime, settings: MembershipSettings, signer: TokenSigner) -> list[APIRouter]:
    web = Web(runtime, settings, signer, Links(signer, settings.public_base_url))
    return [signup_router(web), applications_router(web, staff_principal(signer)), login_router(web)]
