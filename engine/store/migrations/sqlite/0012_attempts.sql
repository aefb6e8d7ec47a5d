-- Attempts counted against the rate limits of sign-ins (issue #12), in the store so that the
-- servers of an installation count together: behind one address, a client cannot try N times
-- as often by reaching N servers. By bucket — the SHA-256 of the kind of attempt and what it
-- is counted by (a client's address or network, or a login), so no address is kept readable —
-- and when; rows older than the limit's window are deleted as attempts are counted.
CREATE TABLE attempts (
    bucket BLOB NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX attempts_bucket ON attempts (bucket, at);
CREATE INDEX attempts_at ON attempts (at);
