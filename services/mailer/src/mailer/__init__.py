"""Mailer: campaigns and transactional mail to consenting members over SMTP; bounces and tracking."""

# The CloudEvents `source` of every event this service publishes.
SOURCE = "/usn-alumni/mailer"
