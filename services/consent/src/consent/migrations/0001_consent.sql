-- Consent: the append-only ledger, the current state it implies, the member
-- copies it needs (kept from member-registered / member-updated), pending
-- double opt-ins, notice texts and erasure tombstones. docs/consent.md explains each.

-- Every notice text ever shown, under its SHA-256 (what a proof quotes).
CREATE TABLE notices (
    sha256     text PRIMARY KEY,
    version    text NOT NULL,
    purpose    text NOT NULL,
    language   text NOT NULL,
    title      text NOT NULL,
    body       text NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now()
);

-- What consent knows of a member: enough to greet her, mail her and scope staff.
CREATE TABLE subjects (
    member_id         text PRIMARY KEY,
    given_name        text,
    email             text,
    language          text NOT NULL DEFAULT 'nb',
    faculties         text[] NOT NULL,
    -- time of the member event this copy is from: an older one never overwrites it
    source_time       timestamptz NOT NULL,
    -- set by a confirmed double opt-in; cleared when the address changes
    email_verified_at timestamptz,
    invited_at        timestamptz,
    -- the per-member sequence of ledger facts; this row is the lock that orders them
    last_sequence     bigint NOT NULL DEFAULT 0
);

-- The ledger. Append-only: rows are never deleted, and changed only by erasure,
-- which removes what identifies the person and keeps the proof (see the trigger).
CREATE TABLE ledger (
    fact_id        text PRIMARY KEY,
    member_id      text,
    sequence       bigint NOT NULL,
    channel        text NOT NULL CHECK (channel IN ('email', 'sms')),
    purpose        text NOT NULL,
    state          text NOT NULL CHECK (state IN ('given', 'withdrawn')),
    recorded_at    timestamptz NOT NULL,
    source         text NOT NULL CHECK (source IN ('preference-centre', 'one-click-unsubscribe', 'import', 'staff')),
    method         text NOT NULL,
    notice_version text,
    notice_sha256  text REFERENCES notices,
    reason         text,
    actor          text,
    erased         boolean NOT NULL DEFAULT false,
    CHECK (source NOT IN ('staff', 'import') OR reason IS NOT NULL OR erased),
    UNIQUE (member_id, sequence)
);
CREATE INDEX ledger_member_key ON ledger (member_id, channel, purpose, sequence);

CREATE FUNCTION ledger_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('consent.erasing', true) = 'on'
       AND NEW.fact_id = OLD.fact_id AND NEW.sequence = OLD.sequence AND NEW.state = OLD.state
       AND NEW.recorded_at = OLD.recorded_at AND NEW.channel = OLD.channel AND NEW.purpose = OLD.purpose THEN
        RETURN NEW;  -- erasure: identifying columns cleared, the proof kept
    END IF;
    RAISE EXCEPTION 'the consent ledger is append-only: % refused', TG_OP;
END $$;
CREATE TRIGGER ledger_is_append_only BEFORE UPDATE OR DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();
CREATE TRIGGER ledger_is_not_truncated BEFORE TRUNCATE ON ledger
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_is_append_only();

-- The state the ledger implies, per member × channel × purpose (absent: never given).
CREATE TABLE current_consent (
    member_id   text NOT NULL REFERENCES subjects ON DELETE CASCADE,
    channel     text NOT NULL,
    purpose     text NOT NULL,
    state       text NOT NULL,
    sequence    bigint NOT NULL,
    fact_id     text NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (member_id, channel, purpose)
);

-- E-mail consent asked for in the preference centre, waiting for its confirmation click.
CREATE TABLE pending_optins (
    nonce        text PRIMARY KEY,
    member_id    text NOT NULL REFERENCES subjects ON DELETE CASCADE,
    purposes     text[] NOT NULL,
    notices      text[] NOT NULL,  -- the notice (sha256) shown for each purpose
    language     text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    confirmed_at timestamptz
);
CREATE INDEX pending_optins_member ON pending_optins (member_id);

-- Erased members: a replayed old member event must not bring them back.
CREATE TABLE erased_members (
    member_id text PRIMARY KEY,
    erased_at timestamptz NOT NULL
);
