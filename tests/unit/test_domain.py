"""The pure membership rules."""

from __future__ import annotations

from membership.members.domain import EligibilityPolicy, Member, apply_graduation
from tests.unit.graduated import grad

DEFAULT = EligibilityPolicy(frozenset({"bachelor", "master", "phd", "evu"}))


def test_first_qualifying_graduation_registers() -> None:
    member, change = apply_graduation(None, grad(), "e1", DEFAULT, new_id=lambda: "m1")
    assert member is not None
    assert change is not None
    assert (member.member_id, change.kind) == ("m1", "registered")
    assert list(member.programmes) == [("BSL", "bachelor")]


def test_exchange_does_not_qualify_by_default_but_can_be_configured() -> None:
    assert apply_graduation(None, grad(degree_level="exchange"), "e1", DEFAULT) == (None, None)
    with_exchange = EligibilityPolicy(DEFAULT.eligible_levels | {"exchange"})
    member, change = apply_graduation(None, grad(degree_level="exchange"), "e1", with_exchange)
    assert member is not None
    assert change is not None


def test_second_degree_updates_and_the_same_degree_again_changes_nothing() -> None:
    member, _ = apply_graduation(None, grad(), "e1", DEFAULT)
    member, change = apply_graduation(member, grad(programme_code="MNAUT", degree_level="master"), "e2", DEFAULT)
    assert change is not None
    assert (change.kind, change.changed) == ("updated", ("programmes",))
    assert member is not None
    assert len(member.programmes) == 2
    again, nothing = apply_graduation(member, grad(programme_code="MNAUT", degree_level="master"), "e3", DEFAULT)
    assert nothing is None
    assert again is member


def test_newer_contact_details_win_and_are_reported() -> None:
    member, _ = apply_graduation(None, grad(), "e1", DEFAULT)
    _, change = apply_graduation(member, grad(email="kari@example.no"), "e2", DEFAULT)
    assert change is not None
    assert change.changed == ("email",)


def test_defects_are_kept_with_the_event_id_and_bounded() -> None:
    member: Member | None = None
    for i in range(30):
        member, _ = apply_graduation(member, grad(email=f"bad{i}"), f"e{i}", DEFAULT)
    assert member is not None
    assert len(member.defects) == 20
    assert member.defects[-1] == {"field": "email", "reason": "not an e-mail address", "event_id": "e29"}
    assert member.email is None


def test_snapshot_lists_programmes_in_graduation_order_and_faculties() -> None:
    member, _ = apply_graduation(None, grad(graduation_date="2023-06-15"), "e1", DEFAULT)
    member, _ = apply_graduation(
        member, grad(programme_code="BØL", faculty="HH", graduation_date="2020-06-15"), "e2", DEFAULT
    )
    assert member is not None
    snap = member.snapshot()
    assert [p.programme_code for p in snap.programmes] == ["BØL", "BSL"]
    assert snap.faculties == ["HH", "TNM"]
