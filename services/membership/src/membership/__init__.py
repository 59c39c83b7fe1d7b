"""Membership: FS graduations → members, self-service, profiles, networks, data-subject rights."""

# The CloudEvents `source` of every event this service publishes.
SOURCE = "/usn-alumni/membership"
