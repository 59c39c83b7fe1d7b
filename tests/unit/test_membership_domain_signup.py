"""The pure rules of pre-alumni and associates: graduation turns a pre-alumna into
an alumna (the same member), and contact details she gave herself outlive FS's."""

from __future__ import annotations

from typing import Any

from membership.members.domain import (
    EligibilityPolicy,
    Person,
    apply_graduation,
    register_associate,
    register_pre_alumnus,
)
from tests.unit.graduated import grad as kari_grad
from usn_schemas.graduated import GraduatedData

# Member ids are UUIDs (the contracts say so); a sign-up or application id becomes the member id.
SIGNUP_ID = "5a1e0000-0000-4000-8000-000000000001"
APPLICATION_ID = "a0000000-0000-4000-8000-000000000001"

POLICY = EligibilityPolicy(frozenset({"bachelor", "master", "phd", "evu"}))
INGRID = Person("Ingrid", "Berg", "ingrid@example.no")
INGRIDS_DEGREE = {
    "student_number": "234567",
    "given_name": "Ingrid",
    "family_name": "Berg",
    "graduation_date": "2025-06-15",
}


def grad(**overrides: Any) -> GraduatedData:
    """Ingrid Berg, who signed up as 234567, graduates (June 2025)."""
    return kari_grad(**{**INGRIDS_DEGREE, **overrides})


def test_a_sign_up_makes_a_pre_alumna_with_the_sign_up_id_and_a_history_line() -> None:
    member = register_pre_alumnus(SIGNUP_ID, "234567", INGRID)
    assert (member.member_id, member.status, member.contact_source) == (SIGNUP_ID, "pre-alumni", "member")
    assert [(h.what, h.detail["signup_id"]) for h in member.new_history] == [("signed-up", SIGNUP_ID)]
    assert member.snapshot().status == "pre-alumni"


def test_her_first_degree_makes_her_an_alumna_and_says_so() -> None:
    member = register_pre_alumnus(SIGNUP_ID, "234567", INGRID)
    member.new_history.clear()
    same, change = apply_graduation(member, grad(), "e1", POLICY)
    assert same is member
    assert change is not None
    assert (change.kind, change.changed) == ("updated", ("status", "programmes"))
    assert member.status == "alumni"
    assert [(h.what, h.source_event_id) for h in member.new_history] == [("status", "e1"), ("graduated", "e1")]


def test_a_degree_that_does_not_qualify_leaves_her_a_pre_alumna() -> None:
    member = register_pre_alumnus(SIGNUP_ID, "234567", INGRID)
    _, change = apply_graduation(member, grad(degree_level="exchange"), "e1", POLICY)
    assert change is None
    assert member.status == "pre-alumni"


def test_fs_contact_details_do_not_overwrite_those_she_gave_but_names_follow_fs() -> None:
    member = register_pre_alumnus(SIGNUP_ID, "234567", INGRID)
    apply_graduation(member, grad(email="234567@usn.no", phone="+4791234567", family_name="Berg-Lie"), "e1", POLICY)
    assert (member.email, member.phone, member.family_name) == ("ingrid@example.no", None, "Berg-Lie")


def test_an_alumna_from_fs_still_takes_fs_contact_details() -> None:
    member, _ = apply_graduation(None, grad(email="old@example.no"), "e1", POLICY)
    assert member is not None
    _, change = apply_graduation(member, grad(email="new@example.no"), "e2", POLICY)
    assert change is not None
    assert (change.changed, member.email, member.status) == (("email",), "new@example.no", "alumni")


def test_an_approved_application_makes_an_associate_without_a_student_number() -> None:
    member = register_associate(APPLICATION_ID, INGRID, {"category": "mentor", "policy_version": "2026-1"})
    snapshot = member.snapshot()
    assert (snapshot.member_id, snapshot.status, snapshot.student_number) == (APPLICATION_ID, "associate", None)
    assert member.new_history[0].what == "approved"
    assert member.new_history[0].detail["policy_version"] == "2026-1"
