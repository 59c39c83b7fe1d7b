-- A campaign that cannot be rendered is `failed`, with the reason (the template's
-- line and problem, never personal data); docs/mailer.md.
ALTER TABLE campaigns DROP CONSTRAINT campaigns_status_check;
ALTER TABLE campaigns ADD CONSTRAINT campaigns_status_check
    CHECK (status IN ('scheduled', 'sending', 'done', 'cancelled', 'failed'));
ALTER TABLE campaigns ADD COLUMN failure_reason text;
