-- A signed-in person replacing their own second factor (issue #12): the new one waits in
-- `pending_totp_secret` for a code of it, but only from the session or token that began the
-- replacement (`pending_by`, its credential's hash) and only until `pending_until` (µs; 0 for
-- an enrolment's, which `enrolling_until` bounds). A new password, a disabling, a reset or
-- too many wrong codes forget it.
ALTER TABLE accounts ADD COLUMN pending_by BYTEA;
ALTER TABLE accounts ADD COLUMN pending_until BIGINT NOT NULL DEFAULT 0;
-- A count of the account's changes of password or second factor (a reset, an enrolment, the
-- person's own change): a session or token issued for a sign-in proven before the latest one
-- is not issued (a sign-in under way while the credentials change does not outlive them).
ALTER TABLE accounts ADD COLUMN credentials_epoch BIGINT NOT NULL DEFAULT 0;
