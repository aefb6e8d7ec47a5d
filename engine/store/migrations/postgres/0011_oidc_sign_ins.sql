-- What the sign-ins at the Service's identity provider need kept (issue #12), in the store so
-- that every server of an installation shares it: a sign-in begun at one server is finished by
-- whichever the provider's answer reaches, a session is confirmed with the provider by any
-- server, and a back-channel logout received by one ends the session at all of them.

-- A sign-in sent to the provider and not yet back: by the SHA-256 of its `state`, with its
-- nonce and PKCE verifier (good only with the code the provider gives the person's browser,
-- and only for 10 minutes). Taken once.
CREATE TABLE oidc_sign_ins (
    state_hash BYTEA PRIMARY KEY,
    nonce TEXT NOT NULL,
    verifier TEXT NOT NULL,
    begun_at BIGINT NOT NULL
);
CREATE INDEX oidc_sign_ins_begun ON oidc_sign_ins (begun_at);

-- A session opened by a sign-in at the provider, by the hash of the session's secret: the
-- provider's person (`sub`) and session (`sid`), the refresh token sealed under a key derived
-- from the client secret (which the database does not hold; bound to the row's session), when
-- the provider last vouched, a confirmation under way (one at a time, so a rotated refresh
-- token is never sent twice), and when a back-channel logout ended it.
CREATE TABLE oidc_sessions (
    session_hash BYTEA PRIMARY KEY,
    subject TEXT NOT NULL,
    provider_session TEXT,
    signed_in_at BIGINT NOT NULL,
    refresh BYTEA,
    confirmed_at BIGINT NOT NULL,
    confirming_until BIGINT,
    logged_out_at BIGINT
);
CREATE INDEX oidc_sessions_subject ON oidc_sessions (subject);
CREATE INDEX oidc_sessions_signed_in ON oidc_sessions (signed_in_at);

-- The back-channel logout tokens taken, by `jti`: none is taken twice.
CREATE TABLE oidc_logout_tokens (
    jti TEXT PRIMARY KEY,
    seen_at BIGINT NOT NULL
);
