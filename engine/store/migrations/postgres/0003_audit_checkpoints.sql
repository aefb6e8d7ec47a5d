-- The audit's signed checkpoints (issue #12): per seal, a C2SP signed note of the Merkle tree
-- (RFC 6962) over the sealed events, signed with a key kept outside the database. The tree's
-- right edge, to extend it without reading the log, is kept in `meta` (`audit_frontier`).
CREATE TABLE audit_checkpoints (
    tree_size BIGINT PRIMARY KEY,
    note TEXT NOT NULL
);

-- Each event is authenticated when it is written: a MAC under a key derived from the audit
-- key, checked when it is sealed. An event without a valid one (a row slipped into the outbox
-- by someone who can write the database) is not sealed but moved here, and the sealing
-- records that it refused it.
ALTER TABLE audit_outbox ADD COLUMN mac TEXT;
ALTER TABLE audit ADD COLUMN mac TEXT;
CREATE TABLE audit_refused (
    id BIGSERIAL PRIMARY KEY,
    refused_at BIGINT NOT NULL,
    outbox_id BIGINT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    point TEXT NOT NULL,
    detail TEXT NOT NULL,
    reason TEXT NOT NULL
);
-- A sealed event's MAC (with its nonce) is written once: a copy is a replay.
CREATE UNIQUE INDEX audit_mac_once ON audit (mac);
