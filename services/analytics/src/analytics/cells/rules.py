"""Small cells: no published figure counts fewer than five people, nor lets one be recomputed.

Pure; every output of the read side (API, CSV, dashboard) goes through here.

The rule (docs/analytics.md, "Small cells"):
- **Primary:** a count of 1–4 is suppressed (`None`). A zero names nobody and is shown.
- **Secondary:** in every group of cells that adds up to a published total (the faculties
  of a total, the rows and the columns of a table), the suppressed cells are either none,
  or at least two that together count at least five people: otherwise the published total
  minus the shown cells would give back a small figure. The smallest shown non-zero cells
  are suppressed until that holds; when no cell is left to suppress, the total is
  suppressed too. A suppressed total is never the sum of its shown cells: one of them is
  suppressed with it (in a table, where a row's total can be hidden by the margins).
- A figure derived from a suppressed count (a share, a revenue) is suppressed with it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

THRESHOLD = 5  # the smallest number of people a published figure may count

K = TypeVar("K", bound=Hashable)
R = TypeVar("R", bound=Hashable)
C = TypeVar("C", bound=Hashable)

Cell = int | None  # a published count: None when suppressed


def small(count: int) -> bool:
    """Counts 1–4 people: never published (zero is)."""
    return 0 < count < THRESHOLD


def primary(count: int) -> Cell:
    """One figure on its own (no total beside it)."""
    return None if small(count) else count


def _group_safe(values: Mapping[K, int], hidden: set[K]) -> bool:
    """The hidden cells of one group cannot be recomputed as a small figure from its total:
    the reader learns their sum (total − the shown cells), so either that sum is zero, or
    only an unpublished remainder that is not small is hidden (see `breakdown`), or at
    least two cells that together count at least five."""
    recomputed = sum(values[k] for k in hidden)
    if recomputed == 0:  # nothing hidden, or only zeros (hidden elsewhere): a zero names nobody
        return True
    if len(hidden) == 1:
        (only,) = hidden
        return only is None and not small(values[only])
    return recomputed >= THRESHOLD


def _protect_group(values: Mapping[K, int], hidden: set[K]) -> bool:
    """Add to `hidden` (in place) the smallest shown non-zero cells until the group is safe.
    False when it cannot be made safe (the group's total must then be hidden)."""
    while not _group_safe(values, hidden):
        shown = [k for k, v in values.items() if k not in hidden and v > 0]
        if not shown:
            return False
        # The smallest first (least information lost); ties by key text, so the result is stable.
        hidden.add(min(shown, key=lambda k: (values[k], str(k))))
    return True


@dataclass(frozen=True)
class Breakdown:
    """A total and its parts (e.g. members by faculty), safe to publish."""

    total: Cell
    parts: dict[str, Cell]


def breakdown(parts: Mapping[str, int], total: int | None = None, hidden: Iterable[str] = ()) -> Breakdown:
    """Suppress a one-way breakdown. `total` defaults to the parts' sum; when it is larger
    (people in no part), the remainder is an unpublished cell that takes part in the rule
    (it is known only while every part is shown); when smaller, the parts overlap. `hidden`: parts suppressed by another
    table already (e.g. a faculty hidden in the members' breakdown)."""
    whole = sum(parts.values()) if total is None else total
    # Parts may overlap (a member of two faculties counts in both): then no remainder is
    # known, and the rule is kept among the parts all the same (it errs on the safe side).
    rest = max(0, whole - sum(parts.values()))
    values: dict[str | None, int] = dict(parts.items())
    suppressed: set[str | None] = {k for k, v in values.items() if small(v)} | {k for k in hidden if k in parts}
    if rest:
        values[None] = rest  # the key None never meets a part's name: never published
        suppressed.add(None)
    total_cell: Cell = whole
    if small(whole) or not _protect_group(values, suppressed):
        total_cell = None
        suppressed |= {k for k, v in values.items() if v > 0}
    return Breakdown(total=total_cell, parts={k: (None if k in suppressed else v) for k, v in parts.items()})


@dataclass(frozen=True)
class Table(Generic[R, C]):
    """A two-way table with its margins, safe to publish."""

    cells: dict[R, dict[C, Cell]]
    row_totals: dict[R, Cell]
    column_totals: dict[C, Cell]
    total: Cell


def table(cells: Mapping[R, Mapping[C, int]], columns: tuple[C, ...] | None = None) -> Table[R, C]:
    """Suppress a two-way table whose row totals, column totals and grand total are all
    published: every row and every column is a group (with its total as one more cell of
    the margin groups), repeated until nothing changes (suppression only grows, so it ends)."""
    cols: tuple[C, ...] = columns if columns is not None else tuple(dict.fromkeys(c for r in cells.values() for c in r))
    rows = tuple(cells)
    value = {(r, c): int(cells[r].get(c, 0)) for r in rows for c in cols}
    row_sum = {r: sum(value[(r, c)] for c in cols) for r in rows}
    col_sum = {c: sum(value[(r, c)] for r in rows) for c in cols}
    grand = sum(row_sum.values())
    # One namespace for every figure: ("cell", r, c), ("row", r), ("col", c), ("all",).
    figure: dict[tuple[object, ...], int] = {("cell", r, c): v for (r, c), v in value.items()}
    figure.update({("row", r): v for r, v in row_sum.items()})
    figure.update({("col", c): v for c, v in col_sum.items()})
    figure[("all",)] = grand
    hidden = {k for k, v in figure.items() if small(v)}
    groups: list[tuple[tuple[object, ...], list[tuple[object, ...]]]] = []
    groups += [(("row", r), [("cell", r, c) for c in cols]) for r in rows]
    groups += [(("col", c), [("cell", r, c) for r in rows]) for c in cols]
    groups.append((("all",), [("row", r) for r in rows]))
    groups.append((("all",), [("col", c) for c in cols]))
    changed = True
    while changed:
        before = len(hidden)
        for total_key, members in groups:
            if total_key in hidden:
                # An unpublished total must not be the sum of its shown cells: hide one of them.
                shown = [k for k in members if k not in hidden and figure[k] > 0]
                if figure[total_key] > 0 and len(shown) == len([k for k in members if figure[k] > 0]):
                    hidden.add(min(shown, key=lambda k: (figure[k], str(k))))
                continue
            local = set(hidden & set(members))
            if not _protect_group({k: figure[k] for k in members}, local):
                hidden.add(total_key)
                local |= {k for k in members if figure[k] > 0}
            hidden |= local
        changed = len(hidden) != before

    def cell(key: tuple[object, ...]) -> Cell:
        return None if key in hidden else figure[key]

    return Table(
        cells={r: {c: cell(("cell", r, c)) for c in cols} for r in rows},
        row_totals={r: cell(("row", r)) for r in rows},
        column_totals={c: cell(("col", c)) for c in cols},
        total=cell(("all",)),
    )


def share(numerator: Cell, denominator: Cell) -> float | None:
    """A share of two published counts; suppressed with either (a share of a small count
    would give it back), and None for an empty denominator."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator
