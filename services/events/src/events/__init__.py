"""The events service: alumni events, capacity, a fair waiting list with timed offers (docs/events.md)."""
