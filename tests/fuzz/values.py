"""Hostile values for the topic fuzzer, and JSON text that Python's own encoder cannot write.

Every value here is something another system could put on a topic: text that
looks like a sealed token, SQL, control and format characters, lone surrogates
(legal as JSON escapes, illegal in UTF-8), numbers past any column type,
nesting past any parser's recursion limit, a megabyte of text, nulls.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

MB = 1_000_000  # "1 MB": fits a 1 MiB topic with its envelope


@dataclass(frozen=True)
class RawJson:
    """JSON text placed as it is: numbers of 5,000 digits, nesting 20,000 deep."""

    text: str


def dumps(doc: Any) -> bytes:
    """`doc` as JSON bytes; RawJson parts verbatim, lone surrogates as \\u escapes."""
    raws: list[str] = []

    def hold(value: Any) -> Any:
        if isinstance(value, RawJson):
            raws.append(value.text)
            return f"\x00raw{len(raws) - 1}\x00"
        if isinstance(value, dict):
            return {k: hold(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [hold(v) for v in value]
        return value

    held = hold(doc)
    try:
        # UTF-8 as producers send it; a lone surrogate has no UTF-8 form and travels escaped.
        text = json.dumps(held, ensure_ascii=False)
        text.encode()
    except UnicodeEncodeError:
        text = json.dumps(held, ensure_ascii=True)
    for i, raw in enumerate(raws):
        text = text.replace(json.dumps(f"\x00raw{i}\x00"), raw)
    return text.encode()


def deep(depth: int) -> RawJson:
    return RawJson("[" * depth + "]" * depth)


def huge_int(digits: int) -> RawJson:
    return RawJson("9" * digits)


# Looks like pd1.<subject>.<version>.<base64url>: the kit's sealed-token shape.
token_like = st.builds(
    lambda subject, version, body: f"pd1.{subject}.{version}.{body}",
    st.one_of(st.just("x"), st.uuids().map(str), st.text(string.ascii_letters + string.digits + "-_'; ", max_size=40)),
    st.one_of(st.integers(min_value=-5, max_value=5), st.just(2**31), st.just(10**30), st.just("v")),
    st.one_of(st.just("AAAA"), st.text(string.ascii_letters + string.digits + "-_=+/", max_size=80)),
)

sql = st.sampled_from(
    [
        "'; DROP TABLE members; --",
        "1' OR '1'='1",
        "$1",
        "'); DELETE FROM inbox; --",
        "\\'",
        "%s%s%s",
        "{{ 7 * 7 }}",
        "${jndi:ldap://127.0.0.1/x}",
        "<script>alert(1)</script>",
        "../../../../etc/passwd",
    ]
)

# PostgreSQL text cannot hold U+0000; a lone surrogate is legal as a JSON escape but has no UTF-8 form.
unstorable = st.sampled_from(["\x00", "a\x00b", "Kari\x00", "\ud800", "x\udfffy"])
odd_characters = st.sampled_from(
    [
        "\u202e\u2066",  # bidi overrides
        "\ufeff",
        "\r\nBcc: victim@example.org",
        "\t\x0b\x0c",
        "🎓" * 50,
        "Ødegård-Sæther",
        " ",
        "",
    ]
)

# Offsets from -23:59 to +23:59, as AwareDatetime allows.
offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
aware_datetimes = st.datetimes(timezones=offsets)
iso_strings = st.one_of(
    aware_datetimes.map(datetime.isoformat),
    st.datetimes().map(datetime.isoformat),  # naive
    st.dates().map(str),
    st.sampled_from(["0000-00-00", "2024-02-30", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "now"]),
)

numbers = st.one_of(
    st.integers(),
    st.sampled_from([0, -1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**30, 2**1000]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.just(huge_int(5000)),
    st.sampled_from([RawJson("NaN"), RawJson("Infinity"), RawJson("-Infinity"), RawJson("1e400"), RawJson("-0")]),
)

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30))
random_json = st.recursive(
    json_leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)

# Rare and costly: drawn through sampled_from so that Hypothesis does not have to build them.
big_or_deep = st.sampled_from(
    [
        RawJson(json.dumps("x" * MB)),
        RawJson(json.dumps("æ" * (MB // 2), ensure_ascii=False)),  # 1 MB of UTF-8 in half as many characters
        deep(20_000),
        deep(900),  # below Python's recursion limit, above pydantic's
        RawJson("{" + ",".join(f'"k{i}": {i}' for i in range(5000)) + "}"),
    ]
)

nasty = st.one_of(
    st.none(),
    st.booleans(),
    numbers,
    st.text(),
    st.text(min_size=150, max_size=400),
    token_like,
    sql,
    odd_characters,
    unstorable,
    iso_strings,
    st.uuids().map(str),
    random_json,
    st.lists(st.text(max_size=5), max_size=3),
)

# Text a contract's free-text field accepts: the values a valid event may really carry.
free_text = st.one_of(
    st.text(min_size=1, max_size=60),
    token_like,
    sql,
    odd_characters.filter(bool),
    st.sampled_from(["Åse Marit", "O'Brien", "Nguyễn Thị", "李", "Ødegård-Sæther"]),
)


def fixed_uuid(space: int, n: int) -> str:
    """A UUID unique to (`space`, `n`): entity ids that say which generated message made them."""
    return f"{space:08x}-0000-4000-8000-{n:012x}"


def utc_now() -> datetime:
    return datetime.now(UTC)
