"""What saving the preference centre means: the pure part, tested on its own.

Unticking something given withdraws it at once. Ticking e-mail for a purpose
records it at once only if the address was already proven by a confirmed
double opt-in; otherwise it waits for the confirmation click. SMS is recorded
at once (the person is identified by her signed link). Anything not changed
records nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consent.ledger import FactRequest
from consent.notices import Language, NoticeBook, NoticeRef
from usn_schemas.consent import CHANNELS, Channel, ConsentState

Choice = tuple[Channel, str]  # channel, purpose


class UnknownChoiceError(ValueError):
    def __init__(self, name: str, purposes: tuple[str, ...]) -> None:
        allowed = [f"{c}:{p}" for p in purposes for c in CHANNELS]
        super().__init__(f"unknown choice {name[:60]!r}; allowed: {', '.join(allowed)}")
        self.allowed = allowed


def parse_choices(fields: list[tuple[str, str]], purposes: tuple[str, ...]) -> set[Choice]:
    """Ticked boxes (form fields "email:newsletter" = "on") → choices; unknown names are refused."""
    chosen: set[Choice] = set()
    for name, value in fields:
        channel, _, purpose = name.partition(":")
        if channel not in CHANNELS or purpose not in purposes:
            raise UnknownChoiceError(name, purposes)
        if value == "on":
            chosen.add((channel, purpose))  # checked against CHANNELS above
    return chosen


@dataclass
class Plan:
    record: list[FactRequest] = field(default_factory=list)
    needs_confirmation: list[str] = field(default_factory=list)  # e-mail purposes awaiting the opt-in click


def plan_save(
    member_id: str,
    current: dict[tuple[str, str], str],
    wanted: set[Choice],
    *,
    has_email: bool,
    email_verified: bool,
    notices: NoticeBook,
    language: Language,
    may_give: bool = True,
) -> Plan:
    """`may_give=False` (a page reached from an unsubscribe link, which anyone holding
    an old mail may have): withdrawals only; giving needs a link from a fresh e-mail."""
    plan = Plan()
    for purpose in notices.purposes:
        notice = notices.get(purpose, language).ref
        for channel in CHANNELS:
            given = current.get((channel, purpose)) == "given"
            want = (channel, purpose) in wanted
            if given and not want:
                plan.record.append(_request(member_id, channel, purpose, "withdrawn", "preference-centre", notice))
            elif want and not given and may_give:
                if channel == "email" and not has_email:
                    continue  # no address to send to: the page says so
                if channel == "email" and not email_verified:
                    plan.needs_confirmation.append(purpose)
                    continue
                method = "preference-centre-verified-address" if channel == "email" else "preference-centre"
                plan.record.append(_request(member_id, channel, purpose, "given", method, notice))
    return plan


def _request(
    member_id: str, channel: Channel, purpose: str, state: ConsentState, method: str, notice: NoticeRef
) -> FactRequest:
    return FactRequest(
        member_id=member_id,
        channel=channel,
        purpose=purpose,
        state=state,
        source="preference-centre",
        method=method,
        notice=notice,
    )
