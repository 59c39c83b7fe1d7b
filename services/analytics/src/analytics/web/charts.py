"""The dashboard's charts, each also a table, from the read side's (suppressed) answers: pure.

A chart is a category axis and some series; static/dashboard.js hands it to plotly.js.
The page's tables show the same numbers, a suppressed cell as the word for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Json = dict[str, Any]
Kind = Literal["count", "share", "nok", "text", "number"]


@dataclass(frozen=True)
class Column:
    title: str
    kind: Kind


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float | int | None]
    kind: Kind = "count"  # "number": not people (events held)


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    kind: Literal["bar", "line"]
    categories: list[str]
    series: list[Series]
    columns: list[Column]
    rows: list[list[Any]]
    note: str = ""
    goal: int | None = None  # a horizontal line (growth)
    extra: list[tuple[str, Any, Kind]] = field(default_factory=list)  # figures beside the table

    def spec(self) -> Json:
        """What dashboard.js draws."""
        return {
            "id": self.id,
            "kind": self.kind,
            "categories": self.categories,
            "series": [{"name": s.name, "values": s.values, "kind": s.kind} for s in self.series],
            "goal": self.goal,
        }


def _table_chart(
    chart_id: str,
    title: str,
    kind: Literal["bar", "line"],
    label: str,
    categories: list[str],
    series: list[tuple[str, list[Any], Kind]],
    **more: Any,
) -> Chart:
    columns = [Column(label, "text"), *(Column(name, k) for name, _, k in series)]
    rows = [[c, *(values[i] for _, values, _ in series)] for i, c in enumerate(categories)]
    return Chart(
        chart_id,
        title,
        kind,
        categories,
        # Shares are read in the table: on a count's axis they would be invisible.
        [Series(name, values, k) for name, values, k in series if k != "share"],
        columns,
        rows,
        **more,
    )


def growth(answer: Json, t: Mapping[str, str]) -> Chart:
    months = [p["month"] for p in answer["series"]]
    members = [p["members"] for p in answer["series"]]
    model = answer["growth"]
    return _table_chart(
        "growth",
        t["growth"],
        "line",
        t["month"],
        months,
        [(t["members"], members, "count")],
        goal=answer["goal"],
        note=t["growth_goal"],
        extra=[
            (t["goal"], answer["goal"], "number"),
            (t["progress"], model["progress"], "share"),
            (t["needed_per_month"], model["needed_per_month"], "number"),
            (t["pace_per_month"], model["pace_per_month"], "number"),
            (t["projected"], model.get("projected_at_goal_date"), "number"),
        ],
    )


def reach(answer: Json, t: Mapping[str, str]) -> Chart:
    rows = answer["reach"]
    return _table_chart(
        "reach",
        t["reach"],
        "bar",
        t["channel_purpose"],
        [f"{r['channel']} · {r['purpose']}" for r in rows],
        [(t["members"], [r["members"] for r in rows], "count"), (t["share"], [r["share"] for r in rows], "share")],
    )


def campaigns(answer: Json, t: Mapping[str, str]) -> Chart:
    rows = answer["campaigns"]
    names = [f"{(r['faculty'] or 'USN')} · {r['campaign_id'][:8]}" for r in rows]
    return _table_chart(
        "campaigns",
        t["campaigns"],
        "bar",
        t["campaign"],
        names,
        [(t[k], [r[k] for r in rows], "count") for k in ("sent", "opened", "clicked", "bounced")],
    )


def events(answer: Json, t: Mapping[str, str]) -> Chart:
    rows = answer["events"]
    return _table_chart(
        "events",
        t["events"],
        "bar",
        t["organiser_kind"],
        [f"{r['faculty']} · {r['kind']}" for r in rows],
        [
            (t["published"], [r["published"] for r in rows], "number"),
            *((t[k], [r[k] for r in rows], "count") for k in ("registered", "attended", "no_shows", "waitlisted")),
        ],
    )


def volunteering(answer: Json, t: Mapping[str, str]) -> Chart:
    types = list(answer["by_type"])
    return _table_chart(
        "volunteering",
        t["volunteering"],
        "bar",
        t["offer_type"],
        types,
        [(t["offers"], [answer["by_type"][k] for k in types], "count")],
    )


def engagement(answer: Json, t: Mapping[str, str]) -> Chart:
    modes = list(answer["by_mode"])
    return _table_chart(
        "engagement",
        t["engagement"],
        "bar",
        t["mode"],
        [t.get(f"mode_{m}", m) for m in modes],
        [
            (t["engaged"], [answer["by_mode"][m] for m in modes], "count"),
            (t["share"], [answer["by_mode_share"][m] for m in modes], "share"),
        ],
        extra=[(t["engaged"], answer["engaged"], "count"), (t["engaged_share"], answer["engaged_share"], "share")],
    )


def pilot(answer: Json, t: Mapping[str, str]) -> Chart:
    names = list(answer["pilot"])
    values = [answer["pilot"][n] for n in names]
    if "rest" in answer:
        names, values = [*names, t["rest"]], [*values, answer["rest"]]
    return _table_chart("pilot", t["pilot"], "bar", t["programme"], names, [(t["members"], values, "count")])


def value(answer: Json, t: Mapping[str, str]) -> Chart:
    evu = answer["evu"]
    shares = [f"{s['share_bp'] / 100:.1f} %" for s in evu["scenarios"]]
    categories = [*shares, t["observed"]]
    strategy = [s["strategy_revenue_nok"] for s in evu["scenarios"]] + [None]
    live = [s["live_revenue_nok"] for s in evu["scenarios"]] + [evu["observed_revenue_nok"]]
    engagement = answer["engagement"]
    return _table_chart(
        "value",
        t["value"],
        "bar",
        t["evu_scenario"],
        categories,
        # The strategy's own table counts no one and has no observed row: its empty cell is "–", not suppressed.
        [(t["strategy_revenue"], strategy, "number"), (t["live_revenue"], live, "nok")],
        extra=[
            (t["engaged_share"], engagement["engaged_share"], "share"),
            (f"{t['engagement_value']}: {t['observed']}", _range(engagement["observed"]), "text"),
            *(
                (
                    f"{t['engagement_value']}, {s['share_bp'] / 100:.0f} %: "
                    f"{t['on_members']} / {t['on_former_students']}",
                    f"{_range(s['on_members'])} / {_range(s['on_former_students'])}",
                    "text",
                )
                for s in engagement["scenarios"]
            ),
        ],
    )


def _range(r: Json) -> str:
    if r["low_nok"] is None:
        return "–"
    return f"{nok(r['low_nok'])}–{nok(r['high_nok'])}"


def nok(n: int) -> str:
    return f"{n:,}".replace(",", "\u202f")  # a narrow space groups thousands in both languages


def charts(answers: Mapping[str, Json], t: Mapping[str, str]) -> list[Chart]:
    """Every chart of the dashboard, in page order."""
    return [
        growth(answers["members/growth"], t),
        reach(answers["reach"], t),
        campaigns(answers["campaigns"], t),
        events(answers["events"], t),
        volunteering(answers["volunteering"], t),
        engagement(answers["engagement"], t),
        pilot(answers["members/pilot"], t),
        value(answers["value"], t),
    ]


def fmt(value: Any, kind: Kind, lang: str, suppressed: str) -> str:
    """One table cell as text: a suppressed (None) count as the word for it."""
    if value is None:
        return suppressed if kind in ("count", "share", "nok") else "–"
    if kind == "share":
        text = f"{value * 100:.1f} %"
    elif kind in ("count", "nok", "number") and isinstance(value, int):
        text = nok(value)
    elif isinstance(value, float):
        text = f"{value:,.1f}".replace(",", "\u202f")
    else:
        return str(value)
    return text.replace(".", ",") if lang == "nb" else text
