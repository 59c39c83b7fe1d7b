-- A service's local copy of consent state, kept from consent-given / consent-withdrawn.
-- One row per member × channel × purpose: the fact with the highest per-member
-- sequence seen so far (facts arrive on two topics, so not in order).
CREATE TABLE consent_view (
    member_id   text        NOT NULL,
    channel     text        NOT NULL,
    purpose     text        NOT NULL,
    state       text        NOT NULL CHECK (state IN ('given', 'withdrawn')),
    sequence    bigint      NOT NULL,
    fact_id     text        NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (member_id, channel, purpose)
);
