"""Consent's part of a member's access export (GDPR art. 15): what the ledger and her copy hold."""

from __future__ import annotations

EXPORT_QUERIES = {
    "member_copy": "SELECT * FROM subjects WHERE member_id = $1",
    "current_consent": "SELECT * FROM current_consent WHERE member_id = $1 ORDER BY channel, purpose",
    # Every fact with the exact notice text she was shown.
    "ledger": "SELECT l.*, n.title AS notice_title, n.body AS notice_text FROM ledger l"
    " LEFT JOIN notices n ON n.sha256 = l.notice_sha256 WHERE l.member_id = $1 ORDER BY l.sequence",
    "awaiting_confirmation": "SELECT purposes, language, requested_at, expires_at, confirmed_at"
    " FROM pending_optins WHERE member_id = $1",
}
