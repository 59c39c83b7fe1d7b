-- Events and their registrations (docs/events.md).

CREATE TABLE events (
    event_id uuid PRIMARY KEY,
    organiser text NOT NULL,
    -- What staff gave (usn_schemas.events.EventDefinition), as published in the event facts.
    definition jsonb NOT NULL,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    registration_deadline timestamptz NOT NULL,
    capacity integer NOT NULL CHECK (capacity >= 1),
    offer_hours double precision NOT NULL CHECK (offer_hours > 0),
    status text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published', 'cancelled')),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    cancelled_at timestamptz,
    -- Per-event sequence of the facts published about it (the envelope's `sequence`);
    -- advanced only under the event's row lock, so it follows commit order.
    last_sequence bigint NOT NULL DEFAULT 0,
    -- Order of arrival of registrations: the waiting list is first come, first served.
    last_arrival bigint NOT NULL DEFAULT 0
);

CREATE TABLE registrations (
    registration_id uuid PRIMARY KEY,
    event_id uuid NOT NULL REFERENCES events (event_id),
    -- NULL once she is erased: the row stays for the counts, the link to her goes.
    member_id uuid,
    status text NOT NULL CHECK (status IN ('registered', 'waitlisted', 'offered', 'cancelled', 'expired')),
    arrival bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    offered_at timestamptz,
    offer_expires_at timestamptz,
    ended_at timestamptz,
    end_reason text,
    attended_at timestamptz,
    UNIQUE (event_id, arrival)
);

-- Once per member and event, whatever became of it: a member who cancelled has left for good.
CREATE UNIQUE INDEX registrations_once_per_member ON registrations (event_id, member_id) WHERE member_id IS NOT NULL;
-- The waiting list in order, and the counts.
CREATE INDEX registrations_by_status ON registrations (event_id, status, arrival);
-- The offer sweep: offers past their time.
CREATE INDEX registrations_offers ON registrations (offer_expires_at) WHERE status = 'offered';
CREATE INDEX registrations_member ON registrations (member_id) WHERE member_id IS NOT NULL;

-- Members erased (member-erased): a link issued before her erasure must not register her again.
-- Her pseudonymous id only, as membership's tombstone keeps it.
CREATE TABLE erased_members (
    member_id uuid PRIMARY KEY,
    erased_at timestamptz NOT NULL
);
