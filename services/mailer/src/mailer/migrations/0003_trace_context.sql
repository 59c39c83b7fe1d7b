-- The W3C trace context of the request a queued mail came from, so the SMTP
-- hand-off continues the graduate's trace (alumni_kit.tracing). Ids only.
ALTER TABLE transactional ADD COLUMN trace_context jsonb NOT NULL DEFAULT '{}';
