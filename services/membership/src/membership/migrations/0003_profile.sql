-- The self-service profile, volunteer offers and faculty/programme networks.
-- Every row about a member goes with her (ON DELETE CASCADE): erasure deletes the member row.

-- What she tells us herself beyond contact details (those stay on members).
CREATE TABLE profiles (
    member_id  uuid        PRIMARY KEY REFERENCES members ON DELETE CASCADE,
    language   text        NOT NULL DEFAULT 'nb' CHECK (language IN ('nb', 'en')),
    employer   text        CHECK (char_length(employer) <= 200),
    job_title  text        CHECK (char_length(job_title) <= 200),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE member_interests (
    member_id uuid        NOT NULL REFERENCES members ON DELETE CASCADE,
    interest  text        NOT NULL,
    since     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (member_id, interest)
);
CREATE INDEX member_interests_interest ON member_interests (interest);

-- Offers standing now; the history (and the per-member sequence) is volunteer_facts.
CREATE TABLE volunteer_offers (
    member_id  uuid        NOT NULL REFERENCES members ON DELETE CASCADE,
    offer_type text        NOT NULL,
    offered_at timestamptz NOT NULL,
    PRIMARY KEY (member_id, offer_type)
);
CREATE INDEX volunteer_offers_type ON volunteer_offers (offer_type);

-- Every published offer/withdrawal; `sequence` is per member, gap-free, across both topics.
CREATE TABLE volunteer_facts (
    member_id   uuid        NOT NULL REFERENCES members ON DELETE CASCADE,
    sequence    bigint      NOT NULL CHECK (sequence >= 1),
    offer_type  text        NOT NULL,
    state       text        NOT NULL CHECK (state IN ('offered', 'withdrawn')),
    event_id    text        NOT NULL UNIQUE,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (member_id, sequence)
);

-- Networks hold no personal data of members; the staff subject who created one is kept for audit.
CREATE TABLE networks (
    network_id     uuid        PRIMARY KEY,
    name           text        NOT NULL CHECK (char_length(name) BETWEEN 2 AND 120),
    faculty        text        NOT NULL,
    programme_code text,
    external_url   text        CHECK (char_length(external_url) <= 500),
    created_by     text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX networks_faculty_name ON networks (faculty, lower(name));

CREATE TABLE network_members (
    network_id uuid        NOT NULL REFERENCES networks ON DELETE CASCADE,
    member_id  uuid        NOT NULL REFERENCES members ON DELETE CASCADE,
    joined_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (network_id, member_id)
);
CREATE INDEX network_members_member ON network_members (member_id);
