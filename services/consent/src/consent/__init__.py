"""Consent: the ledger of consent facts, the preference centre, double opt-in and unsubscribe."""

# The CloudEvents `source` of every event this service publishes.
SOURCE = "/usn-alumni/consent"
