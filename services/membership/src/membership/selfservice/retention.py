"""How long sign-ups and applications that never became members keep personal data.

They are not members, so erasure (which deletes a member and everything that
references her) never reaches them; they go by themselves instead. A sign-up or
application whose link expired unused is useless (the token itself says
"expired", the row is not needed for that) and goes at once; a rejected
application is kept `rejected_days` so the decision can be explained if asked.
Run opportunistically on each new sign-up and application: both tables are
indexed for it and the statements touch only stale rows.
"""

from __future__ import annotations

from alumni_kit.db import Conn

# Their keys go with them (they sealed the verification mails on the topic): a
# sign-up id that never became a member id has no other use for its key.
_PURGE = """
WITH signups_gone AS (
    DELETE FROM signups WHERE confirmed_at IS NULL AND expires_at < now() RETURNING signup_id AS id
), unverified_gone AS (
    DELETE FROM applications WHERE status = 'unverified' AND verify_expires_at < now() RETURNING application_id AS id
), rejected_gone AS (
    DELETE FROM applications WHERE status = 'rejected' AND decided_at < now() - make_interval(days => $1)
    RETURNING application_id AS id
)
DELETE FROM subject_keys WHERE subject_id IN (
    SELECT id FROM signups_gone UNION ALL SELECT id FROM unverified_gone UNION ALL SELECT id FROM rejected_gone
)"""


async def purge_stale(conn: Conn, rejected_days: int) -> None:
    await conn.execute(_PURGE, rejected_days)
