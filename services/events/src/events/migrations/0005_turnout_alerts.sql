-- The organiser's turnout alert by mail (docs/events.md, "Minimum-turnout forecast"):
-- one row per event, the last alert mailed. `open` while the forecast stays below the
-- minimum: the same crossing is mailed again only when the figures worsen materially
-- (events/forecast/rules.py, alert_due); a forecast back at the minimum closes it, so a
-- later fall is a new crossing.
CREATE TABLE turnout_alerts (
    event_id uuid PRIMARY KEY REFERENCES events (event_id),
    open boolean NOT NULL DEFAULT false,
    expected integer,            -- the forecast the last mail told
    minimum integer,             -- the minimum it was told against
    alerted_at timestamptz,
    mails integer NOT NULL DEFAULT 0
);
