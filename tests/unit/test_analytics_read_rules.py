"""The read side's pure parts: query parameters and roles (scope.py), answers (views.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alumni_kit.auth import StaffPrincipal
from analytics.read import views
from analytics.read.scope import ForbiddenError, ParameterError, Scope, parse_as_of, scope_for

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-06-30T12:00:00Z", datetime(2026, 6, 30, 12, tzinfo=UTC)),
        ("2026-06-30t12:00:00z", datetime(2026, 6, 30, 12, tzinfo=UTC)),
        ("2026-06-30T14:00:00+02:00", datetime(2026, 6, 30, 12, tzinfo=UTC)),
        ("2026-06-30T12:00:00.123456789Z", datetime(2026, 6, 30, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2026-06-30 12:00:00-01:00", datetime(2026, 6, 30, 13, tzinfo=UTC)),
    ],
)
def test_as_of_reads_rfc_3339(text: str, expected: datetime) -> None:
    assert parse_as_of(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("2026-06-30", "RFC 3339"),
        ("2026-06-30T12:00:00", "RFC 3339"),
        ("2026-06-30T12:00Z", "RFC 3339"),
        ("2026-13-01T00:00:00Z", "not a real"),
        ("2026-06-30T12:00:00+25:00", "not a real"),
        ("2026-12-03T00:00:00Z", "future"),
    ],
)
def test_as_of_refusals_name_the_rule(text: str, words: str) -> None:
    with pytest.raises(ParameterError) as refused:
        parse_as_of(text, NOW)
    assert refused.value.field == "as_of"
    assert words in refused.value.msg


def test_roles_and_faculties() -> None:
    comms = StaffPrincipal("c", "comms", None)
    board = StaffPrincipal("b", "aab", None)
    ak = StaffPrincipal("a", "ak", "HH")
    assert scope_for(comms, None) == Scope(None)
    assert scope_for(board, "TNM") == Scope("TNM")
    assert scope_for(ak, None) == Scope("HH")
    assert scope_for(ak, "HH") == Scope("HH")
    with pytest.raises(ForbiddenError):
        scope_for(ak, "TNM")
    with pytest.raises(ParameterError):
        scope_for(comms, "XX")


def test_a_faculty_sees_the_cell_the_usn_wide_answer_shows() -> None:
    figures = views.MemberFigures(total=38, by_faculty={"HH": 20, "TNM": 9, "HS": 3, "HIU": 6})
    usn = views.members(figures, Scope(None), None, NOW)
    assert usn["by_faculty"] == {"HH": 20, "TNM": 9, "HS": None, "HIU": None}
    hiu = views.members(figures, Scope("HIU"), None, NOW)
    assert hiu == {"as_of": NOW.isoformat(), "total": None, "by_faculty": {"HIU": None}}
    past = NOW - timedelta(days=30)
    assert views.members(figures, Scope("HH"), past, NOW)["as_of"] == past.isoformat()


def test_members_in_no_faculty_can_be_the_second_hidden_cell() -> None:
    # HS (3) and the 2 in no faculty are hidden together (5): HIU can be shown.
    figures = views.MemberFigures(total=40, by_faculty={"HH": 20, "TNM": 9, "HS": 3, "HIU": 6})
    assert views.members(figures, Scope(None), None, NOW)["by_faculty"] == {"HH": 20, "TNM": 9, "HS": None, "HIU": 6}


def test_an_opened_count_whose_complement_is_small_is_suppressed() -> None:
    row = views.CampaignFigures("c1", "HH", sent=12, skipped={"no-consent": 6}, bounced=0, opened=8, clicked=7)
    (got,) = views.campaigns([row], Scope(None), None, NOW)["campaigns"]
    assert (got["sent"], got["skipped"], got["recipients"]) == (12, {"no-consent": 6}, 18)
    assert got["opened"] is None  # 12 − 8 = 4 did not open
    assert got["clicked"] == 7
    assert got["open_rate"] is None
