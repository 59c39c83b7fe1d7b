"""The read side's pure parts: query parameters and roles (scope.py), answers (views.py)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alumni_kit.auth import StaffPrincipal
from analytics.read import views
from analytics.read.routes import as_csv, flatten
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


# Counts of events, not of people: shown as they are (views.events).
NOT_PEOPLE = ("published", "cancelled_events")


def _small_ints(data: object) -> list[int]:
    if isinstance(data, dict):
        return [n for k, v in data.items() if k not in NOT_PEOPLE for n in _small_ints(v)]
    if isinstance(data, list):
        return [n for v in data for n in _small_ints(v)]
    return [data] if isinstance(data, int) and not isinstance(data, bool) and 0 < data < 5 else []


faculty_counts = st.fixed_dictionaries({f: st.integers(0, 12) for f in ("HH", "TNM", "HS", "HIU")})


@settings(max_examples=150, deadline=None)
@given(
    faculty_counts,
    st.integers(0, 6),
    faculty_counts,
    st.integers(0, 30),
    st.dictionaries(st.sampled_from(["no-consent", "bounced-before"]), st.integers(0, 9), max_size=2),
    st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30)),
    st.sampled_from([None, "HH", "HS"]),
)
def test_no_answer_holds_a_count_of_one_to_four(
    members: dict[str, int],
    unplaced: int,
    engaged: dict[str, int],
    sent: int,
    skipped: dict[str, int],
    opens: tuple[int, int, int],
    faculty: str | None,
) -> None:
    scope = Scope(faculty)
    total = sum(members.values()) + unplaced
    engaged = {f: min(n, members[f]) for f, n in engaged.items()}
    answers: list[object] = [
        views.members(views.MemberFigures(total, members), scope, None, NOW),
        views.reach(views.ReachFigures(members, total, {("email", "newsletter"): engaged}, {}), scope, None, NOW),
        views.campaigns(
            [views.CampaignFigures("c", "HH", sent, skipped, *(min(n, sent) for n in opens))], scope, None, NOW
        ),
        views.engagement(
            views.EngagementFigures(
                total,
                members,
                {"communication": engaged},
                {"communication": sum(engaged.values())},
                engaged,
                sum(engaged.values()),
            ),
            scope,
            None,
            NOW,
        ),
        views.volunteering({"mentor": engaged, "board": members}, scope, None, NOW),
        views.evu(
            views.EvuFigures(total, engaged, sum(engaged.values()), sum(engaged.values())), None, scope, None, NOW
        ),
    ]
    points = [views.GrowthPoint(date(2026, m, 1), max(total - 12 + m, 0), members) for m in range(1, 13)]
    growth = views.growth(points, scope, None, NOW)
    members_cell = answers[0]["total"]  # type: ignore[index]
    evu_cell = answers[-1]["enrolled"]  # type: ignore[index]
    engaged_cell = answers[3]["engaged"]  # type: ignore[index]
    answers += [growth, views.value_model(members_cell, evu_cell, engaged_cell, growth, None, NOW)]
    for answer in answers:
        assert _small_ints(answer) == [], answer
        assert _small_in_csv(answer) == [], answer


def _small_in_csv(answer: views.Json) -> list[str]:
    """The CSV export's rows (routes.as_csv) whose value counts 1–4 people."""
    rows = list(csv.reader(io.StringIO(as_csv(answer))))
    assert rows[0] == ["figure", "value"]
    assert len(rows) == len(flatten(answer)) + 1  # one row per figure: nothing dropped unchecked
    people = [(name, value) for name, value in rows[1:] if name.rpartition(".")[2] not in NOT_PEOPLE]
    return [f"{name} = {value}" for name, value in people if value.isdigit() and 0 < int(value) < 5]


values_by_faculty = st.dictionaries(
    st.sampled_from(["BSL", "BØL", "GLU", "MSc-IT", "PhD"]), faculty_counts, min_size=1, max_size=4
)
event_counts = st.tuples(*(st.integers(0, 12) for _ in range(7)))


@settings(max_examples=150, deadline=None)
@given(
    values_by_faculty,
    st.dictionaries(st.sampled_from(["BSL", "BØL", "BOPT", "GLU"]), st.integers(0, 12), min_size=4, max_size=4),
    st.integers(0, 40),
    st.lists(st.tuples(st.sampled_from(["USN", "HH", "TNM", "HS"]), event_counts), max_size=4),
    st.sampled_from([None, "HH", "HS"]),
)
def test_tables_pilot_and_events_hold_no_count_of_one_to_four_in_json_or_csv(
    cells: dict[str, dict[str, int]],
    pilot: dict[str, int],
    rest: int,
    organised: list[tuple[str, tuple[int, ...]]],
    faculty: str | None,
) -> None:
    scope = Scope(faculty)
    events = [
        views.EventFigures(
            organiser,
            "meetup",
            1,
            0,
            registered,
            waitlisted,
            offers,
            min(attended, registered),
            min(no_shows, registered - min(attended, registered)),
            cancellations,
        )
        for organiser, (registered, waitlisted, offers, attended, no_shows, cancellations, _) in organised
    ]
    answers = [
        views.dimension(views.DimensionFigures("programme", cells), scope, None, NOW),
        views.pilot(views.PilotFigures(pilot, rest), None, NOW),
        views.events(events, scope, None, NOW),
    ]
    for answer in answers:
        assert _small_ints(answer) == [], answer
        assert _small_in_csv(answer) == [], answer
