"""Hand-written graduated v1 events for the tests (built by the shared factory, tests/events.py)."""

from tests.events import graduation as graduation
