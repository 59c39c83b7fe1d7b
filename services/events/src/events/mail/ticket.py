"""What the confirmation says about her ticket (check-in code and QR).

A hook for the check-in feature (`events.checkin.codes`, not on this branch yet): once
it is there, these lines carry her code and the confirmation links her ticket page."""

from __future__ import annotations


def ticket_lines(registration_id: str) -> list[str]:
    """Lines for the confirmation about the ticket of `registration_id` (none yet)."""
    del registration_id  # the check-in code will be derived from it
    return []
