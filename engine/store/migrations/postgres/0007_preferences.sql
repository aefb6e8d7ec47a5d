-- A person's language on the pages (issue #13: Latvian or English, chosen per person), by the
-- login their identity has — a local account's or the identity provider's alike. A preference
-- of the person's own, set by them alone; no act on a study, so no audit event.
CREATE TABLE preferences (
    login TEXT PRIMARY KEY,
    language TEXT NOT NULL CHECK (language IN ('lv', 'en'))
);
