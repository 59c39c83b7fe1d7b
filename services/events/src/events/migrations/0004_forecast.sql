-- The minimum-turnout forecast and the organiser's decision (docs/events.md,
-- "Minimum-turnout forecast"; events/forecast/).

-- One forecast per event and day (Europe/Oslo); a later run the same day replaces it.
CREATE TABLE forecasts (
    event_id uuid NOT NULL REFERENCES events (event_id),
    day date NOT NULL,
    computed_at timestamptz NOT NULL,
    registrations integer NOT NULL,   -- registered + offered + waiting, when computed
    expected integer NOT NULL,        -- registrations expected at the decision date
    minimum integer NOT NULL,
    decide_by timestamptz NOT NULL,
    method text NOT NULL CHECK (method IN ('peers', 'own-pace', 'too-early', 'decided')),
    peers integer NOT NULL,
    peer_fraction double precision,
    below_minimum boolean NOT NULL,
    PRIMARY KEY (event_id, day)
);

-- The organiser's answer to the minimum: the event goes ahead, or it is cancelled
-- (through the event's own cancellation). Once per event.
CREATE TABLE minimum_decisions (
    event_id uuid PRIMARY KEY REFERENCES events (event_id),
    decision text NOT NULL CHECK (decision IN ('confirmed', 'cancelled')),
    registrations integer NOT NULL,   -- the count she decided on
    decided_by text NOT NULL,         -- the staff token's subject, as events.created_by
    decided_at timestamptz NOT NULL
);

-- Peers' curves: one event's registrations by time of arrival.
CREATE INDEX registrations_curve ON registrations (event_id, created_at);
