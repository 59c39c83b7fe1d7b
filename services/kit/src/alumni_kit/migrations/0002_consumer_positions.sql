-- How far each consumer has applied each partition, written in the same
-- transaction as the effects and the inbox entries (alumni_kit/positions.py).
-- Unlike the offsets committed to Kafka (every commit interval, and after the
-- effects), this is exact at every commit: erasure deletes a member's consumed
-- records up to it, and a projection can be rebuilt or resumed from it.
CREATE TABLE IF NOT EXISTS consumer_positions (
    consumer    text        NOT NULL,
    topic       text        NOT NULL,
    partition   int         NOT NULL,
    next_offset bigint      NOT NULL,  -- the first offset not yet applied
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, topic, partition)
);
