-- The mail-facing part of events (docs/events.md, "Mail"): the event's version, which is
-- the SEQUENCE of its iCalendar entries, and the reminders already requested.

-- Advanced by the row's own trigger whenever the definition or the status changes, so no
-- path that changes an event can forget it (and the flows need not know about calendars).
ALTER TABLE events ADD COLUMN version integer NOT NULL DEFAULT 1;

CREATE FUNCTION events_next_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    RETURN NEW;
END;
$$;

CREATE TRIGGER events_version BEFORE UPDATE ON events FOR EACH ROW
    WHEN (OLD.definition IS DISTINCT FROM NEW.definition OR OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION events_next_version();

-- One reminder per event: a replica that finds it here has nothing to do.
CREATE TABLE reminders_sent (
    event_id uuid PRIMARY KEY REFERENCES events (event_id),
    sent_at timestamptz NOT NULL
);
