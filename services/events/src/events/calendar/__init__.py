"""iCalendar (RFC 5545): a registration's entry in mails, and the feed of upcoming events."""
