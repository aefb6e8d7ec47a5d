-- A command line signing in through a browser (RFC 8628's device authorization grant, issue
-- #12): the CLI asks for a grant and shows its user code; a signed-in person enters the code on
-- the `/device` page, with a recent proof of identity, and approves or denies it; the CLI,
-- polling with the device code, then receives a personal token of that person, once. The device
-- code is kept only as its SHA-256; the user code is short-lived (10 minutes) and good only with
-- a signed-in person's approval. Expired grants are deleted when new ones are asked for.
CREATE TABLE device_grants (
    device_hash BYTEA PRIMARY KEY,
    -- Eight letters, without the hyphen it is shown with.
    user_code TEXT NOT NULL UNIQUE,
    -- What the token is for, as the CLI named it, and the address that asked.
    label TEXT NOT NULL,
    client TEXT NOT NULL,
    -- The token's life asked for (days; the policy's default when absent).
    days BIGINT,
    requested_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- The last poll, for RFC 8628's `slow_down`.
    polled_at BIGINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'issued')),
    -- Who decided, and when they last proved who they are: the token's person.
    login TEXT,
    issuer TEXT,
    subject TEXT,
    auth_at BIGINT,
    decided_at BIGINT
);
CREATE INDEX device_grants_expiry ON device_grants (expires_at);
