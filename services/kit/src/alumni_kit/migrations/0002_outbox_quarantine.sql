-- Outbox rows the broker refused permanently (too large for their topic, invalid),
-- moved here by the relay after <SVC>_OUTBOX_MAX_ATTEMPTS refusals so that the rows
-- behind them are published. Kept whole: `python -m usn_tools.outbox retry` puts a
-- row back into the outbox under its own id once the cause is fixed.
CREATE TABLE IF NOT EXISTS outbox_quarantine (
    id             bigint      PRIMARY KEY,  -- its id in the outbox
    topic          text        NOT NULL,
    key            bytea       NOT NULL,
    value          bytea       NOT NULL,
    headers        jsonb       NOT NULL,
    created_at     timestamptz NOT NULL,
    attempts       int         NOT NULL,
    error_class    text        NOT NULL,     -- e.g. MessageSizeTooLargeError
    error_reason   text        NOT NULL,     -- the broker's description of the error code, never the value
    quarantined_at timestamptz NOT NULL DEFAULT now()
);
