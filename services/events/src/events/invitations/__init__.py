"""Invitations: publishing an event requests a campaign to its audience (purpose events)."""
