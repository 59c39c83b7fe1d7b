"""`python -m usn_tools.demo_engagement`: the facts behind the analytics dashboard, loaded idempotently.

After the demo graduations and `usn_tools.demo_events`, through the platform's own paths:
- **consent**: a share of the demo members give consent to the newsletter and events by
  e-mail, through consent's staff import (`POST /consent/import`, as a legacy newsletter
  list would come in; an import fills gaps only, so a second run records nothing);
- **a newsletter** (fixed campaign id) through the mailer's staff API (`POST /campaigns`,
  a repeat is a 409): the mailer sends it to the consenting members, through the mail
  catcher; some of them open it and click its link: the tracking pixel and link of the
  mails in the catcher's folder are fetched (unique opens and clicks, so a repeat counts once);
- **check-ins** at two demo events: a member's ticket page (her signed link) gives her
  code, the door redeems it (`POST /events/{id}/checkin`; a repeat is `already_checked_in`);
- **volunteer offers**: members set offers on their profile (`POST /profile`, JSON, with
  the session cookie a magic-link login sets; the same offers again change nothing);
- **EVU enrolments**: the EVU system's `evu-enrolled` events (schemas/src/usn_schemas/evu.py)
  for some demo graduates, with fixed event and enrolment ids (a repeat is the same enrolment).
Every figure comes out at five people or more, so the dashboard shows it (docs/analytics.md).
"""

from __future__ import annotations

import argparse
import asyncio
import email
import re
import secrets
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.policy import default
from pathlib import Path
from typing import Any

import httpx

from alumni_kit.auth import TokenSigner, issue_member_link, issue_staff_token, parse_keys
from alumni_kit.settings import ServiceSettings
from usn_schemas.evu import EvuEnrolledV1, EvuEnrolment
from usn_tools.demo_events import UPCOMING, fixed_id
from usn_tools.fs_demo import graduation_events
from usn_tools.publish import publish_events

CAMPAIGN_ID = "demo-2026-12-nyhetsbrev"
CAMPAIGN_SUBJECT = "USN Alumni: nytt fra høsten 2026"
CAMPAIGN_LINK = "https://www.usn.no/alumni"
# Every n-th of the first members gives consent; every n-th recipient opens, fewer click.
CONSENT_EVERY, OPEN_EVERY, CLICK_EVERY = 2, 3, 7
MEMBERS = 600
# (event key in demo_events, how many of its registered members are checked in)
# (five or more checked in and five or more not yet: neither figure is suppressed)
CHECKINS = (("tnm-career", 12), ("usn-conference", 7))
# Offers by member position (after the members the demo events use): several types, all faculties.
OFFERS = (
    ["mentor"],
    ["guest-lecture"],
    ["mentor", "research-surveys"],
    ["boards-committees"],
    ["professional-networks"],
    ["research-co-development", "thesis-topics"],
)
VOLUNTEERS = 400  # some 55 a kind (not all profiles save): at least five in each kind × faculty
EVU_COURSES = {
    "HH": ("EVU-LED", "Videreutdanning i ledelse"),
    "HIU": ("EVU-VEIL", "Videreutdanning i veiledning"),
    "HS": ("EVU-PSY", "Videreutdanning i psykisk helsearbeid"),
    "TNM": ("EVU-MARSIK", "Videreutdanning i maritim sikkerhet"),
}
EVU_EVERY = 6  # one graduate in six enrols in a course (of her own faculty)


async def members_list(http: httpx.AsyncClient, url: str, staff: dict[str, str]) -> list[str]:
    """The first MEMBERS members in membership's stable order (the order demo_events uses)."""
    out: list[str] = []
    while len(out) < MEMBERS:
        page = await http.get(f"{url}/members", params={"limit": 200, "offset": len(out)}, headers=staff)
        page.raise_for_status()
        items = [m["member_id"] for m in page.json()["items"]]
        out += items
        if len(items) < 200:
            break
    return out


async def give_consent(http: httpx.AsyncClient, url: str, staff: dict[str, str], members: list[str]) -> str:
    chosen = members[::CONSENT_EVERY]
    items = [
        {"member_id": m, "channel": "email", "purpose": p, "state": "given"}
        for m in chosen
        for p in ("newsletter", "events")
    ]
    body = {"evidence": "Demo: alumni newsletter list, double opt-in (synthetic data)", "items": items}
    answer = await http.post(f"{url}/consent/import", json=body, headers=staff)
    answer.raise_for_status()
    got = answer.json()
    return f"consent: {len(chosen)} members × newsletter, events by e-mail ({got['recorded']} recorded now)"


async def send_newsletter(http: httpx.AsyncClient, url: str, staff: dict[str, str], wait: float) -> dict[str, Any]:
    body = {
        "campaign_id": CAMPAIGN_ID,
        "faculty": "USN",
        "purpose": "newsletter",
        "subject": CAMPAIGN_SUBJECT,
        "body_markdown": "Hei {{ given_name }}!\n\nNytt fra USN Alumni denne høsten: "
        f"[les mer på nettsidene våre]({CAMPAIGN_LINK}).\n\nHilsen USN Alumni",
        "language": "nb",
        "track_opens": True,
    }
    created = await http.post(f"{url}/campaigns", json=body, headers=staff)
    if created.status_code not in (202, 409):  # 409: sent by an earlier run
        created.raise_for_status()
    deadline = asyncio.get_running_loop().time() + wait
    status: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        found = await http.get(f"{url}/campaigns/{CAMPAIGN_ID}", headers=staff)
        if found.status_code == 200:
            status = found.json()
            if status["status"] in ("done", "cancelled", "failed"):
                break
        await asyncio.sleep(1)
    return status


_TRACKING = re.compile(r"https?://[^\s\"'<>]+/t/([oc])/[A-Za-z0-9._~-]+")


def tracking_links(mail_dir: Path) -> Iterator[tuple[str, str]]:
    """(open pixel, click link) of each newsletter mail in the catcher's folder, in a stable order."""
    for path in sorted(mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=default)
        if message["Subject"] != CAMPAIGN_SUBJECT:
            continue
        html = message.get_body(("html",))
        text = html.get_content() if html is not None else ""
        found: dict[str, str] = {}
        for match in _TRACKING.finditer(text):
            found.setdefault(match.group(1), match.group(0).replace("&amp;", "&"))
        if "o" in found and "c" in found:
            yield found["o"], found["c"]


async def open_and_click(http: httpx.AsyncClient, mail_dir: Path) -> str:
    opened = clicked = 0
    for i, (pixel, click) in enumerate(tracking_links(mail_dir)):
        if i % OPEN_EVERY == 0:
            (await http.get(pixel)).raise_for_status()
            opened += 1
        if i % CLICK_EVERY == 0:
            answer = await http.get(click, follow_redirects=False)
            if answer.status_code >= 400:
                answer.raise_for_status()
            clicked += 1
    return f"newsletter: {opened} opened, {clicked} clicked (tracking pixel and link of the mails)"


_CODE = re.compile(r'id="code">([^<]+)<')


async def check_in(
    http: httpx.AsyncClient, url: str, staff: dict[str, str], signer: TokenSigner, members: list[str]
) -> str:
    done = 0
    offsets = {d.key: i for i, d in enumerate(UPCOMING)}
    for key, count in CHECKINS:
        event_id, offset = fixed_id(key), offsets[key]
        mine = members[50 + 25 * offset :][: UPCOMING[offset].registrations][:count]  # as demo_events registers them
        for member_id in mine:
            token = issue_member_link(signer, member_id, "events", 600, secrets.token_urlsafe(12))
            page = await http.get(f"{url}/events/{event_id}/ticket", params={"token": token})
            code = _CODE.search(page.text) if page.status_code == 200 else None
            if code is None:
                continue  # on the waiting list, or no seat
            answer = await http.post(f"{url}/events/{event_id}/checkin", json={"code": code.group(1)}, headers=staff)
            if answer.status_code == 200:  # checked in now, or by an earlier run (`already_checked_in`)
                done += 1
    return f"events: {done} members checked in at {len(CHECKINS)} events (ticket page, then the door's check-in)"


async def volunteer(http: httpx.AsyncClient, url: str, signer: TokenSigner, members: list[str]) -> str:
    # After the members the demo events register (members[:200]); a session cookie as a login sets.
    chosen, saved = members[200 : 200 + VOLUNTEERS], 0
    for i, member_id in enumerate(chosen):
        session = signer.sign("member-session", {"sub": member_id, "sid": f"demo-{i}"}, 600)
        answer = await http.post(
            f"{url}/profile",
            json={"offers": OFFERS[i % len(OFFERS)]},
            cookies={"alumni_session": session},
            headers={"Accept": "application/json"},
        )
        if answer.status_code == 200:
            saved += 1
        elif answer.status_code != 422:  # 422: no e-mail address, which a profile needs: she could not log in
            answer.raise_for_status()
    return f"volunteering: {saved} members offer their help on their profiles"


def enrolments(graduations: int, now: datetime) -> Iterator[dict[str, Any]]:
    seen: set[str] = set()
    for i, g in enumerate(graduation_events(graduations)):
        data = g["data"]
        number = data["student_number"]
        if number in seen or i % EVU_EVERY:
            continue
        seen.add(number)
        code, name = EVU_COURSES[data["faculty"]]
        at = now - timedelta(days=(i * 7) % 300 + 1)
        event = EvuEnrolledV1.create(
            subject=number,
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"usn-demo/evu/{number}/{code}")),
            source="/evu",
            time=at,
            data=EvuEnrolment(
                enrolment_id=f"demo-{number}-{code}",
                student_number=number,
                course_code=code,
                course_name=name,
                faculty=data["faculty"],
                credits=30,
                price_nok=20_000,
                enrolled_at=at,
            ),
        )
        yield event.model_dump(mode="json", exclude_none=True)


async def load(args: argparse.Namespace) -> int:
    signer = TokenSigner(parse_keys(ServiceSettings().signing_keys.get_secret_value()))
    staff = {"Authorization": f"Bearer {issue_staff_token(signer, 'demo-engagement', 'comms', None, 3600)}"}
    async with httpx.AsyncClient(timeout=30) as http:
        members = await members_list(http, args.membership_url, staff)
        if len(members) < 300:
            print(f"demo engagement: only {len(members)} members yet; load the demo graduations first", file=sys.stderr)
            return 1
        if args.part in ("consent", "all"):
            print(await give_consent(http, args.consent_url, staff, members))
        if args.part == "consent":
            return 0
        status = await send_newsletter(http, args.mailer_url, staff, args.wait)
        print(f"newsletter {CAMPAIGN_ID}: {status.get('status', 'not consumed yet')}, {status.get('sent', 0)} sent,"
              f" skipped {status.get('skipped', {})}")  # fmt: skip
        print(await open_and_click(http, Path(args.mail_dir)))
        print(await check_in(http, args.events_url, staff, signer, members))
        print(await volunteer(http, args.membership_url, signer, members))
    events = list(enrolments(args.graduations, datetime.now(UTC)))
    await publish_events(args.bootstrap, args.topic_prefix + "evu-enrolled", events, progress=False)
    print(f"evu: {len(events)} enrolments published on evu-enrolled")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="usn_tools.demo_engagement", description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--topic-prefix", default="")
    parser.add_argument("--membership-url", default="http://127.0.0.1:8101")
    parser.add_argument("--consent-url", default="http://127.0.0.1:8102")
    parser.add_argument("--mailer-url", default="http://127.0.0.1:8103")
    parser.add_argument("--events-url", default="http://127.0.0.1:8104")
    parser.add_argument("--mail-dir", default=".run/mail")
    parser.add_argument("--graduations", type=int, default=2000, help="how many demo graduations were published")
    # The consents first (before the demo events are published, so that their announcements
    # reach the members who agreed to hear of events), the rest after the demo events.
    parser.add_argument("--part", choices=("consent", "rest", "all"), default="all")
    parser.add_argument("--wait", type=float, default=60, help="seconds to wait for the newsletter to be sent")
    return asyncio.run(load(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
