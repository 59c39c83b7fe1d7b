-- The projection tables of ONE generation (services/analytics/README.md). Run with the
-- generation's schema first on the search_path (analytics.generations.create_generation);
-- additive changes only (IF NOT EXISTS), so the live generation can take them at start.
--
-- member_key: the member id (a pseudonymous UUID from membership) until she is erased;
-- then every row of hers is re-keyed to an anonymous key (analytics.rules.anonymous_key)
-- and her member row is deleted: counts stay, the id goes.

-- The Kafka positions this generation has applied, committed with its rows.
CREATE TABLE IF NOT EXISTS positions (
    topic text NOT NULL,
    partition integer NOT NULL,
    next_offset bigint NOT NULL,
    PRIMARY KEY (topic, partition)
);

-- Erased members, by anonymous key only (so that facts read after her erasure are filed anonymously too).
CREATE TABLE IF NOT EXISTS erased (
    member_key text PRIMARY KEY,
    erased_at timestamptz NOT NULL
);

-- Current members (member-registered / member-updated, the newest snapshot by event time).
CREATE TABLE IF NOT EXISTS members (
    member_key text PRIMARY KEY,
    status text NOT NULL,                 -- pre-alumni | alumni | associate
    faculties text[] NOT NULL,            -- HH TNM HS HIU
    -- [{programme_code, faculty, campus, degree_level, graduation_year}]
    programmes jsonb NOT NULL DEFAULT '[]',
    registered_at timestamptz NOT NULL,   -- time of her member-registered (growth over time)
    -- Keyed hash of her FS student number (joins EVU enrolments); null for associates.
    person_key text,
    fact_time timestamptz NOT NULL,       -- time of the snapshot these columns come from
    fact_id text NOT NULL
);

-- Every consent fact (coverage at any day = the newest fact per member x channel x purpose).
CREATE TABLE IF NOT EXISTS consent_facts (
    member_key text NOT NULL,
    channel text NOT NULL,                -- email | sms
    purpose text NOT NULL,                -- e.g. newsletter-hh
    sequence bigint NOT NULL,
    state text NOT NULL,                  -- given | withdrawn
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (member_key, channel, purpose, sequence)
);

-- Campaigns: the request (campaigns) and the mailer's newest progress (campaign-status).
CREATE TABLE IF NOT EXISTS campaigns (
    campaign_id text PRIMARY KEY,
    faculty text,                         -- sender: HH TNM HS HIU USN
    purpose text,
    requested_at timestamptz,
    status text,                          -- scheduled sending paused done cancelled failed
    status_at timestamptz,
    recipients integer NOT NULL DEFAULT 0,
    sent integer NOT NULL DEFAULT 0,
    skipped jsonb NOT NULL DEFAULT '{}',  -- reason -> count
    bounced integer NOT NULL DEFAULT 0,
    failed integer NOT NULL DEFAULT 0
);

-- One row per campaign x member: sent, first open, first click.
CREATE TABLE IF NOT EXISTS deliveries (
    campaign_id text NOT NULL,
    member_key text NOT NULL,
    faculty text,                         -- the campaign's sender
    purpose text,
    sent_at timestamptz,
    opened_at timestamptz,
    clicked_at timestamptz,
    PRIMARY KEY (campaign_id, member_key)
);

-- Bounces (email-bounced), one per fact id; member_key null when the mailer did not know her.
CREATE TABLE IF NOT EXISTS bounces (
    bounce_id text PRIMARY KEY,
    campaign_id text,
    member_key text,
    kind text NOT NULL,                   -- hard | soft
    bounced_at timestamptz NOT NULL
);

-- Events as they now stand (event-published/-updated/-cancelled, highest sequence wins).
CREATE TABLE IF NOT EXISTS events (
    event_id text PRIMARY KEY,
    organiser text NOT NULL,              -- HH TNM HS HIU USN
    kind text NOT NULL,                   -- conference seminar social career evu-info webinar
    campus text,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    capacity integer NOT NULL,
    status text NOT NULL,                 -- published | cancelled
    published_at timestamptz,
    cancelled_at timestamptz,
    sequence bigint NOT NULL
);

-- Registrations: the newest status (by the per-event sequence) and when each stage was first reached.
CREATE TABLE IF NOT EXISTS registrations (
    registration_id text PRIMARY KEY,
    event_id text NOT NULL,
    member_key text,
    status text NOT NULL,                 -- registered waitlisted offered cancelled expired attended
    sequence bigint NOT NULL,
    registered_at timestamptz,
    waitlisted_at timestamptz,
    offered_at timestamptz,
    offer_expired_at timestamptz,
    cancelled_at timestamptz,
    attended_at timestamptz
);

-- Volunteer offers per member x type, newest by the per-member sequence.
CREATE TABLE IF NOT EXISTS volunteer_offers (
    member_key text NOT NULL,
    offer_type text NOT NULL,
    state text NOT NULL,                  -- offered | withdrawn
    sequence bigint NOT NULL,
    faculties text[] NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (member_key, offer_type)
);

-- EVU enrolments (evu-enrolled, from the EVU system).
CREATE TABLE IF NOT EXISTS evu_enrolments (
    enrolment_id text PRIMARY KEY,
    person_key text NOT NULL,             -- keyed hash of the student number (joins members.person_key)
    course_code text NOT NULL,
    faculty text NOT NULL,
    price_nok integer,
    enrolled_at timestamptz NOT NULL,
    cancelled boolean NOT NULL DEFAULT false
);

-- Engagement facts in CASE's modes, derived from the rows above with the weights of the
-- settings at apply time (a rebuild after a weight change rewrites the history).
CREATE TABLE IF NOT EXISTS engagement_facts (
    member_key text NOT NULL,
    source text NOT NULL,                 -- e.g. opened:<campaign>, attended:<registration>
    mode text NOT NULL,                   -- communication | experiential | volunteer | philanthropic
    weight double precision NOT NULL,     -- 0: no longer counts (a withdrawn offer)
    at timestamptz NOT NULL,
    PRIMARY KEY (member_key, source)
);

-- An erasure finds every row of hers: tables whose key does not start with member_key.
CREATE INDEX IF NOT EXISTS deliveries_member ON deliveries (member_key);
CREATE INDEX IF NOT EXISTS registrations_member ON registrations (member_key);
CREATE INDEX IF NOT EXISTS bounces_member ON bounces (member_key);
