"""Shared mechanics every USN Alumni service imports: settings, database and
migrations, outbox/inbox, dead-letter routing, batch consumption, metrics,
tracing, health endpoints and authentication. One copy, never per service."""
