-- The mailer: member copies, suppression, campaigns and one delivery row per
-- (campaign, member) — the unique key is the at-most-once guarantee — and
-- transactional mail. docs/mailer.md explains the states.

CREATE TABLE members (
    member_id   text PRIMARY KEY,
    given_name  text NOT NULL,
    family_name text NOT NULL,
    email       text,
    faculties   text[] NOT NULL,
    -- [{"code", "level", "campus", "faculty", "year"}]: what audiences select on
    programmes  jsonb NOT NULL,
    source_time timestamptz NOT NULL
);
CREATE INDEX members_faculties ON members USING gin (faculties);

CREATE TABLE erased_members (
    member_id text PRIMARY KEY,
    erased_at timestamptz NOT NULL
);

-- Addresses that get no mail at all (hard bounces, too many soft ones), lower-cased.
CREATE TABLE suppressions (
    address       text PRIMARY KEY,
    reason        text NOT NULL,
    status        text,
    suppressed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE soft_bounces (
    address text PRIMARY KEY,
    count   int NOT NULL,
    last_at timestamptz NOT NULL
);

CREATE TABLE campaigns (
    campaign_id   text PRIMARY KEY,
    requested_by  text NOT NULL,
    faculty       text NOT NULL,
    purpose       text NOT NULL,
    audience      jsonb NOT NULL,
    subject       text NOT NULL,
    body_markdown text NOT NULL,
    language      text NOT NULL,
    track_opens   boolean NOT NULL,
    send_at       timestamptz NOT NULL,
    status        text NOT NULL DEFAULT 'scheduled'
                  CHECK (status IN ('scheduled', 'sending', 'done', 'cancelled')),
    requested_at  timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);

CREATE TABLE deliveries (
    id              bigserial PRIMARY KEY,
    campaign_id     text NOT NULL REFERENCES campaigns,
    member_id       text NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sending', 'sent', 'skipped', 'bounced', 'failed', 'uncertain')),
    reason          text,
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    consent_fact_id text,
    message_id      text,
    address         text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (campaign_id, member_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX deliveries_by_campaign_state ON deliveries (campaign_id, state);
CREATE INDEX deliveries_by_message ON deliveries (message_id);

CREATE TABLE transactional (
    id              bigserial PRIMARY KEY,
    event_id        text NOT NULL UNIQUE,
    kind            text NOT NULL,
    member_id       text,
    mail            jsonb NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sending', 'sent', 'skipped', 'bounced', 'failed', 'uncertain')),
    reason          text,
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    message_id      text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transactional_due ON transactional (next_attempt_at, id) WHERE state = 'pending';
