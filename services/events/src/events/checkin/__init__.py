"""Check-in: signed codes (Ed25519) and their QR, the member's ticket page, the staff
check-in API and page, the signed revocation list and the offline verifier (docs/events.md)."""
