"""The render worker: a child process of the mailer that renders campaign bodies, and
nothing else (`python -m mailer.render_worker`, started by rendering.Renderer).

Why a process, and not a thread or a check inside the template loop: a template can
ask for one operation that runs long in C (a filter that pads to 10⁹ characters, a
huge number) and no Python-level check gets a turn until it returns; a thread cannot
be stopped at all. A process can be killed, and its memory capped. So every render
runs here under three bounds, each for what the others cannot catch:

- a wall-clock alarm (SIGALRM) at the time budget stops a Python-level loop at once,
  with the template line it was on;
- a CPU-time limit (RLIMIT_CPU) a little past the budget ends this process even if
  the mailer that would kill it is gone;
- an address-space limit (RLIMIT_AS) turns an allocation explosion into MemoryError.

The mailer kills the worker when no answer comes within the budget plus a grace
period (rendering.py) and starts a new one for the next campaign.

Protocol, one JSON document per line: the worker says `{"ready": true}` once, then
answers each request `{"campaign": {...}, "sender": [name, address], "max_bytes": n,
"seconds": s}` with `{"parts": {...}}` (compose.PreparedParts) or
`{"error": {"line": n | null, "message": "..."}}`.
"""

from __future__ import annotations

import json
import math
import resource
import signal
import sys
from email.headerregistry import Address
from types import FrameType
from typing import Any

from mailer import compose
from mailer.bodies import TemplateProblemError, raw_line_of


class BudgetExceededError(BaseException):
    """Raised by the alarm; a BaseException, so no `except Exception` in library code swallows it."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise BudgetExceededError


def limit_memory(mib: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (mib * 1024 * 1024, resource.RLIM_INFINITY))


def _limit_cpu(seconds: float) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    # SIGXCPU at the soft limit ends the process (its default action).
    soft = math.ceil(used + seconds) + 2
    resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.RLIM_INFINITY))


def answer(request: dict[str, Any]) -> dict[str, Any]:
    campaign = compose.Campaign(**request["campaign"])
    sender = Address(display_name=request["sender"][0], addr_spec=request["sender"][1])
    seconds = float(request["seconds"])
    _limit_cpu(seconds)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        parts = compose.check(campaign, sender, int(request["max_bytes"]))
    except TemplateProblemError as exc:
        return {"error": {"line": exc.line, "message": exc.message}}
    except BudgetExceededError as exc:
        return {"error": {"line": raw_line_of(exc), "message": f"rendering takes longer than {seconds:g} s"}}
    except MemoryError:
        return {"error": {"line": None, "message": "the template needs more memory than rendering is allowed"}}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return {"parts": parts.to_dict()}


def main() -> None:
    limit_memory(int(sys.argv[1]) if len(sys.argv) > 1 else 256)
    signal.signal(signal.SIGALRM, _alarm)
    # Ctrl-C in a terminal reaches the whole process group: the mailer decides when this ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = sys.stdout.buffer
    out.write(b'{"ready": true}\n')
    out.flush()
    for line in sys.stdin.buffer:  # ends when the mailer closes the pipe (or is gone)
        try:
            reply = answer(json.loads(line))
        except BudgetExceededError:  # the alarm went off just as the answer was ready
            reply = {"error": {"line": None, "message": "rendering takes longer than its time budget"}}
        out.write(json.dumps(reply, ensure_ascii=False).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    main()
