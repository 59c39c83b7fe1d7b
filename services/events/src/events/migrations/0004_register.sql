-- A registration in one statement (events/registrations.py, register): the locks, the
-- refusals, the seat decision, the insert and its fact in the outbox, run by PostgreSQL
-- as one call. Sent on its own (an implicit transaction), it holds the event's row lock
-- only while the server runs it: no round trip to the service between the lock and the
-- commit, where the rate of one popular event was bounded (bench/README.md).
--
-- The rules are those of events/rules.py (registration_refusal, placement), applied
-- here as they are there; tests/e2e/test_events_capacity.py and test_events_input.py
-- hold this function to them.
--
-- Locks, in the order every path takes them (docs/events.md): her member lock (a
-- transaction-scoped advisory lock, as erasure takes it), then the event's row.
-- Each statement after the locks takes a fresh snapshot (READ COMMITTED, a VOLATILE
-- function), so the counts include every registration committed before the lock.
--
-- The service builds both possible facts beforehand (`event-registered` and
-- `event-waitlisted`, as the kit's envelope with sequence 0); this sets the event's
-- next sequence (and her waiting-list position) in the one it publishes.
CREATE FUNCTION events_register(
    p_event uuid, p_member uuid, p_registration uuid, p_now timestamptz,
    p_registered jsonb, p_waitlisted jsonb, p_member_lock_space integer
) RETURNS TABLE (outcome text, waitlist_position integer)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    e record;
    held text;
    n_registered bigint;
    n_offered bigint;
    n_waiting bigint;
    next_arrival bigint;
    next_sequence bigint;
    placed text;
    fact jsonb;
BEGIN
    PERFORM pg_advisory_xact_lock(p_member_lock_space, hashtext(p_member::text));
    SELECT status, starts_at, registration_deadline, capacity INTO e
      FROM events WHERE event_id = p_event FOR UPDATE;
    IF NOT FOUND OR e.status = 'draft' THEN
        RETURN QUERY SELECT 'no-event', NULL::integer; RETURN;
    ELSIF e.status = 'cancelled' THEN
        RETURN QUERY SELECT 'cancelled', NULL::integer; RETURN;
    ELSIF p_now >= e.starts_at THEN
        RETURN QUERY SELECT 'started', NULL::integer; RETURN;
    ELSIF p_now >= e.registration_deadline THEN
        RETURN QUERY SELECT 'closed', NULL::integer; RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM erased_members WHERE member_id = p_member) THEN
        RETURN QUERY SELECT 'erased', NULL::integer; RETURN;
    END IF;
    SELECT r.status INTO held FROM registrations r WHERE r.event_id = p_event AND r.member_id = p_member;
    IF FOUND THEN
        RETURN QUERY SELECT 'already:' || held, NULL::integer; RETURN;
    END IF;
    SELECT count(*) FILTER (WHERE r.status = 'registered'), count(*) FILTER (WHERE r.status = 'offered'),
           count(*) FILTER (WHERE r.status = 'waitlisted')
      INTO n_registered, n_offered, n_waiting
      FROM registrations r WHERE r.event_id = p_event;
    -- rules.placement: a free seat only when nobody waits; an offer holds its seat.
    placed := CASE WHEN e.capacity - n_registered - n_offered > 0 AND n_waiting = 0
                   THEN 'registered' ELSE 'waitlisted' END;
    UPDATE events SET last_arrival = last_arrival + 1, last_sequence = last_sequence + 1
     WHERE event_id = p_event RETURNING last_arrival, last_sequence INTO next_arrival, next_sequence;
    INSERT INTO registrations (registration_id, event_id, member_id, status, arrival)
    VALUES (p_registration, p_event, p_member, placed, next_arrival);
    IF placed = 'registered' THEN
        fact := jsonb_set(p_registered, '{sequence}', to_jsonb(next_sequence));
    ELSE
        fact := jsonb_set(jsonb_set(p_waitlisted, '{sequence}', to_jsonb(next_sequence)),
                          '{data,waitlist_position}', to_jsonb(n_waiting + 1));
    END IF;
    INSERT INTO outbox (topic, key, value)
    VALUES ('event-' || placed, convert_to(p_event::text, 'UTF8'), convert_to(fact::text, 'UTF8'));
    PERFORM pg_notify('outbox', '');  -- delivered at commit: wakes the relay
    RETURN QUERY SELECT placed, CASE WHEN placed = 'waitlisted' THEN (n_waiting + 1)::integer END;
END;
$$;
