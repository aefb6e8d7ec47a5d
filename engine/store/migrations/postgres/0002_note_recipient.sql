-- The public half of the key that seals people's notes on steps with personal data: anyone
-- completing a task encrypts to it; only the study's keys open what it sealed, and they go
-- with the study's identifying data (MK403 p.26). Null for keys made before it existed.
ALTER TABLE study_keys ADD COLUMN note_recipient TEXT;
