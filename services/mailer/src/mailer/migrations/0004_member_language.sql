-- The language each member chose in her profile (member-registered/-updated `language`;
-- NULL: never chosen). A transactional mail with translations is sent in it, else as it
-- came (the requester's bilingual text).
ALTER TABLE members ADD COLUMN IF NOT EXISTS language text CHECK (language IN ('nb', 'en'));
