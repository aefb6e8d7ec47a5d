-- The audit's signed checkpoints (issue #12): per seal, a C2SP signed note of the Merkle tree
-- (RFC 6962) over the sealed events, signed with a key kept outside the database. The tree's
-- right edge, to extend it without reading the log, is kept in `meta` (`audit_frontier`).
CREATE TABLE audit_checkpoints (
    tree_size INTEGER PRIMARY KEY,
    note TEXT NOT NULL
);
