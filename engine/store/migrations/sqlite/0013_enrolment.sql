-- A local account whose person chooses their own password and second factor at first sign-in
-- (issue #12): until when its one-time enrolment code is good (µs), 0 once the person has
-- enrolled or when the operator set the password. While it is not 0, `password_hash` holds the
-- Argon2id hash of the enrolment code, and the account signs in with nothing else.
ALTER TABLE accounts ADD COLUMN enrolling_until BIGINT NOT NULL DEFAULT 0;
-- What the person chose and was shown, kept until they prove it works with a code of the new
-- second factor: then it replaces the enrolment code. A new start replaces it.
ALTER TABLE accounts ADD COLUMN pending_password_hash TEXT;
ALTER TABLE accounts ADD COLUMN pending_totp_secret BLOB;
