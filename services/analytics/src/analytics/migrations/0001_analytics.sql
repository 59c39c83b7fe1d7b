-- Analytics (services/analytics/README.md). The projections live in one PostgreSQL
-- schema per generation (generation.sql, created by analytics.generations); this
-- table says which generation is live, which one a rebuild is filling, and which
-- were built for an as_of moment.

CREATE TABLE generations (
    name text PRIMARY KEY CHECK (name ~ '^analytics_g[0-9]+$'),
    -- building: a rebuild or an as_of is filling it; live: what the service serves
    -- (exactly one); retired: replaced by a rebuild (dropped later); as_of: complete, frozen
    -- at as_of_moment.
    state text NOT NULL CHECK (state IN ('building', 'live', 'retired', 'as_of')),
    -- For a generation built for as_of: the moment, and the positions to stop at.
    as_of_moment timestamptz,
    -- Where a build stops (topic -> partition -> end offset), fixed when the build starts
    -- for as_of; a rebuild catches up with the live end offsets instead.
    stop_at jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    switched_at timestamptz
);
CREATE UNIQUE INDEX generations_one_live ON generations ((true)) WHERE state = 'live';
CREATE SEQUENCE generation_numbers;
