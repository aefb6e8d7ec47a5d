-- People who act (issue #12): local accounts, and the credentials a signed-in person holds.
-- An account is a login (the one a spec binds to a person, rule SF142), an Argon2id password
-- hash (PHC string) and a TOTP secret (RFC 6238) for the second factor. A person signed in
-- through the Service's identity provider has no row here: their identity is the provider's.
CREATE TABLE accounts (
    login TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    totp_secret BLOB NOT NULL,
    -- The last TOTP time step accepted: a code is good once (RFC 6238 §5.2).
    totp_last_step BIGINT NOT NULL DEFAULT 0,
    disabled BIGINT NOT NULL DEFAULT 0,
    -- 1 for a person outside the Service (an external researcher's team): such an account
    -- never acts in a role of the Service, whatever a spec binds to its login.
    external BIGINT NOT NULL DEFAULT 0,
    -- A person who signs in at the Service's identity provider: the provider's subject (`sub`)
    -- this login is bound to. Such an account has no password of its own.
    oidc_subject TEXT,
    -- Failed sign-ins since the last success, and until when the account refuses sign-in.
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE UNIQUE INDEX accounts_oidc_subject ON accounts (oidc_subject);

-- Sessions (browser cookies) and personal tokens (the CLI's), by the SHA-256 of their secret:
-- the secret itself is never stored. `issuer` and `subject` name the identity (the local
-- installation or the identity provider); `auth_at` is when the person last proved who they
-- are (password and second factor), for the acts that need a recent proof.
CREATE TABLE credentials (
    hash BLOB PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('session', 'token')),
    login TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    label TEXT NOT NULL,
    csrf_hash BLOB,
    created_at BIGINT NOT NULL,
    auth_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX credentials_by_login ON credentials (login);

-- A study's releases and transfers, found without reading its other runs (a status reads them
-- on every request; a study has 100,000 runs and more).
CREATE INDEX step_runs_study_kind ON step_runs (study, kind);
