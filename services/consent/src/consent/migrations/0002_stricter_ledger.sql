-- The erasure exception of the append-only rule, narrowed: erasure may only clear
-- what identifies the person (member_id, reason, actor) and mark the fact erased;
-- everything the proof consists of must stay exactly as it was, and an erased
-- fact cannot be changed again.
CREATE OR REPLACE FUNCTION ledger_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('consent.erasing', true) = 'on'
       AND OLD.member_id IS NOT NULL AND NOT OLD.erased
       AND NEW.member_id IS NULL AND NEW.reason IS NULL AND NEW.actor IS NULL AND NEW.erased
       AND NEW.fact_id = OLD.fact_id AND NEW.sequence = OLD.sequence AND NEW.state = OLD.state
       AND NEW.recorded_at = OLD.recorded_at AND NEW.channel = OLD.channel AND NEW.purpose = OLD.purpose
       AND NEW.source = OLD.source AND NEW.method = OLD.method
       AND NEW.notice_version IS NOT DISTINCT FROM OLD.notice_version
       AND NEW.notice_sha256 IS NOT DISTINCT FROM OLD.notice_sha256 THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the consent ledger is append-only: % refused', TG_OP;
END $$;

-- A confirmation proves the address it was sent to, and quotes the notice version seen.
ALTER TABLE pending_optins ADD COLUMN address_sha256 text;
ALTER TABLE pending_optins ADD COLUMN notice_version text;
