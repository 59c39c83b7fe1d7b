-- A campaign may carry a personal link per recipient (campaigns v1's optional `member_link`):
-- the URL with `{token}` where the signed member link goes, and how long each link works.
ALTER TABLE campaigns ADD COLUMN member_link_url text;
ALTER TABLE campaigns ADD COLUMN member_link_days integer;
