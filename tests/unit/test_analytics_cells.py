"""Small-cell suppression (analytics.cells.rules): generated tables, bounded runs."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.cells.rules import THRESHOLD, Table, breakdown, primary, share, table

# Counts around the threshold are where the rule works; a few large ones keep it honest.
counts = st.one_of(st.integers(0, 9), st.integers(10, 5_000))
parts_strategy = st.dictionaries(st.sampled_from(["HH", "TNM", "HS", "HIU"]), counts, max_size=4)
FAST = settings(max_examples=300, deadline=None)


def _no_small(values: list[int | None]) -> bool:
    return all(v is None or not 0 < v < THRESHOLD for v in values)


def test_primary_hides_one_to_four_and_shows_zero() -> None:
    assert [primary(n) for n in range(7)] == [0, None, None, None, None, 5, 6]


def test_one_small_faculty_takes_the_next_smallest_with_it() -> None:
    got = breakdown({"HH": 3, "TNM": 40, "HS": 12, "HIU": 100})
    assert got.total == 155
    assert got.parts == {"HH": None, "TNM": 40, "HS": None, "HIU": 100}


def test_two_small_cells_that_add_up_to_less_than_five_take_a_third() -> None:
    got = breakdown({"HH": 1, "TNM": 2, "HS": 7, "HIU": 9})
    assert got.parts == {"HH": None, "TNM": None, "HS": None, "HIU": 9}


def test_a_small_total_hides_everything_but_zeros() -> None:
    got = breakdown({"HH": 3, "TNM": 0})
    assert got.total is None
    assert got.parts == {"HH": None, "TNM": 0}


def test_people_in_no_part_count_in_the_rule() -> None:
    # 2 members belong to no faculty: total − the parts would give them back, so HH goes too.
    got = breakdown({"HH": 6, "TNM": 50}, total=58)
    assert got.total == 58
    assert got.parts == {"HH": None, "TNM": 50}


@FAST
@given(parts_strategy, st.integers(0, 6))
def test_breakdown_publishes_no_small_figure_and_none_can_be_recomputed(parts: dict[str, int], rest: int) -> None:
    total = sum(parts.values()) + rest
    got = breakdown(parts, total=total)
    assert _no_small([got.total, *got.parts.values()])
    for key, cell in got.parts.items():
        assert cell is None or cell == parts[key]  # what is shown is true
    if got.total is not None:
        assert got.total == total
        # What the reader can recompute: the hidden parts (and the people in no part) together.
        hidden = [parts[k] for k, v in got.parts.items() if v is None]
        unknown = len(hidden) + (1 if rest else 0)
        recomputed = total - sum(v for v in got.parts.values() if v is not None)
        if not hidden:  # only the people in no part: recomputable, so never a small figure
            assert recomputed == rest
            assert not 0 < rest < THRESHOLD
        elif recomputed:  # hidden zeros (none here) would recompute as zero, naming nobody
            assert unknown >= 2
            assert recomputed >= THRESHOLD


def _group_ok(total: int | None, cells: list[int | None], true: list[int]) -> bool:
    if total is None:  # a hidden total cannot be added up from the shown cells
        return sum(true) == 0 or any(c is None for c, t in zip(cells, true, strict=True) if t > 0)
    hidden = [t for c, t in zip(cells, true, strict=True) if c is None]
    return sum(hidden) == 0 or (len(hidden) >= 2 and sum(hidden) >= THRESHOLD)


@FAST
@given(
    st.lists(st.lists(counts, min_size=1, max_size=4), min_size=1, max_size=4).filter(
        lambda rows: len({len(r) for r in rows}) == 1
    )
)
def test_table_rows_columns_and_margins_follow_the_rule(grid: list[list[int]]) -> None:
    cells = {f"r{i}": {f"c{j}": v for j, v in enumerate(row)} for i, row in enumerate(grid)}
    got: Table[str, str] = table(cells)
    shown = [v for row in got.cells.values() for v in row.values()]
    assert _no_small([*shown, *got.row_totals.values(), *got.column_totals.values(), got.total])
    rows, cols = list(cells), list(next(iter(cells.values())))
    for r in rows:
        true = [cells[r][c] for c in cols]
        assert got.row_totals[r] in (None, sum(true))
        assert _group_ok(got.row_totals[r], [got.cells[r][c] for c in cols], true)
    for c in cols:
        true = [cells[r][c] for r in rows]
        assert got.column_totals[c] in (None, sum(true))
        assert _group_ok(got.column_totals[c], [got.cells[r][c] for r in rows], true)
    row_true = [sum(cells[r].values()) for r in rows]
    assert _group_ok(got.total, [got.row_totals[r] for r in rows], row_true)
    col_true = [sum(cells[r][c] for r in rows) for c in cols]
    assert _group_ok(got.total, [got.column_totals[c] for c in cols], col_true)


def test_a_share_of_a_suppressed_count_is_suppressed() -> None:
    assert share(None, 100) is None
    assert share(10, 0) is None
    assert share(10, 40) == 0.25
