-- Check-in (docs/events.md, events/checkin/): who redeemed a code, beside `attended_at`
-- (0001) which records when it was first redeemed. Staff subjects only, no member data.
ALTER TABLE registrations ADD COLUMN checked_in_by text;
