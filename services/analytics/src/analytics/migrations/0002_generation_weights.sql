-- The engagement weights a generation was built with (rules.Weights as JSON): engagement
-- rows carry their weights from the build, so an as_of generation is reused, and an
-- unfinished rebuild resumed, only under the same weights. NULL: built before this
-- column, never reused.
ALTER TABLE generations ADD COLUMN IF NOT EXISTS weights jsonb;
