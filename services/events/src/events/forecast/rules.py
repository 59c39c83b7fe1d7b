"""Pure rules of the minimum-turnout forecast (docs/events.md, "Minimum-turnout forecast").

The question: how many registrations will the event have at its decision date
(`minimum.decide_by`)? Registrations come in along a curve that is much the same for
events of one kind and faculty (a seminar fills late, a conference early), so the
event's own count today is scaled by how far its peers had got at the same time
before *their* decision:

    fraction of a peer = its registrations at (its reference − lead) / its registrations at its reference
    forecast           = registrations now / median fraction of the peers

where `lead` is the time left until this event's decision and a peer's reference is
its own decision date (or its registration deadline when it had no minimum). The
median, not the mean: one peer that filled in its last hour must not sway it.

Fallback (no peer with any registration, or the peers had none yet at this lead):
the event's own pace since it was published, carried on to the decision date
(`registrations now × (elapsed + lead) / elapsed`).

Before a day has passed since publication neither rule says much: the invitations are
still on their way, and an event published later before its decision than its peers
were would read as far behind them with its first registrations only. The forecast is
then the count itself, method `too-early`, and never alarms (`method` says which rule
answered): an organiser is not told on publishing day that nobody has registered yet.

No I/O: the job reads the curves (forecast/repository.py) and calls these.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Method = Literal["peers", "own-pace", "too-early", "decided"]
# Neither the peers' curves nor her own pace are trusted before this long since publication.
MIN_HISTORY = timedelta(days=1)


@dataclass(frozen=True)
class PeerCurve:
    """An earlier event of the same kind and organiser: registrations at its reference
    time (its `final`), and at the same lead before it as the event forecast has now."""

    final: int
    at_same_lead: int


@dataclass(frozen=True)
class Forecast:
    registrations: int  # now
    expected: int  # at the decision date
    method: Method
    peers: int  # peers that counted (final > 0)
    peer_fraction: float | None  # the median fraction, when the peers answered


def fraction_reached(peer: PeerCurve) -> float | None:
    """How far the peer had got at the same lead (None: it had no registrations at all).
    Clamped to 1: cancellations after that point must not make a peer look slower than none."""
    if peer.final <= 0:
        return None
    return min(max(peer.at_same_lead, 0) / peer.final, 1.0)


def peer_fraction(peers: list[PeerCurve]) -> tuple[float | None, int]:
    """The median fraction of the peers that had registrations, and how many those were."""
    fractions = [f for f in map(fraction_reached, peers) if f is not None]
    if not fractions:
        return None, 0
    return statistics.median(fractions), len(fractions)


def forecast(
    registrations: int, published_at: datetime, decide_by: datetime, now: datetime, peers: list[PeerCurve]
) -> Forecast:
    """Registrations expected at `decide_by`: from the peers' curves, else her own pace."""
    registrations = max(registrations, 0)
    lead = decide_by - now
    if lead <= timedelta(0):  # the decision date has come: the count is the answer
        return Forecast(registrations, registrations, "decided", 0, None)
    fraction, counted = peer_fraction(peers)
    elapsed = now - published_at
    if elapsed < MIN_HISTORY:
        return Forecast(registrations, registrations, "too-early", counted, fraction)
    if fraction is not None and fraction > 0:
        return Forecast(registrations, _whole(registrations / fraction), "peers", counted, fraction)
    expected = _whole(registrations * ((elapsed + lead) / elapsed))
    return Forecast(registrations, expected, "own-pace", counted, fraction)


def below_minimum(f: Forecast, minimum: int) -> bool:
    """Whether the organiser is to be alerted: the forecast falls short of the minimum
    (not while it is too early to tell: a fresh event has no pace yet)."""
    return f.method != "too-early" and f.expected < minimum


# A crossing already mailed is mailed again only when the forecast has fallen this much
# further since (a share of the minimum, at least one registration): a daily forecast that
# wobbles by one or two must not mail the organiser every day.
MATERIAL_DROP = 0.10


@dataclass(frozen=True)
class LastAlert:
    """The last turnout alert mailed for an event; `open` while its crossing lasts."""

    open: bool
    expected: int | None
    minimum: int | None


def alert_due(last: LastAlert | None, expected: int, minimum: int) -> bool:
    """Whether a forecast below the minimum is to be mailed to the organiser: the first
    crossing (or a new one, after the forecast was back at the minimum), a changed minimum,
    or a forecast fallen materially below the one last mailed."""
    if last is None or not last.open or last.expected is None or last.minimum != minimum:
        return True
    return last.expected - expected >= max(1, math.ceil(minimum * MATERIAL_DROP))


def _whole(x: float) -> int:
    """Whole registrations, rounded down; 8 / 0.8 is 10, not 9.999… rounded down to 9."""
    return math.floor(x + 1e-9)


def lead_time(decide_by: datetime, now: datetime) -> timedelta:
    """How long before the decision `now` is (never negative): the point on the peers' curves."""
    return max(decide_by - now, timedelta(0))
