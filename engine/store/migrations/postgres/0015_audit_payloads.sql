-- An audit row's payload — who acted (`actor`), on what (`object`, which may be a person's
-- account) and the rest (`detail`) — enters the chain and the Merkle tree by its digest
-- (`payload_hash`: SHA-256 of a random salt, `payload_salt`, and the three, length-prefixed)
-- beside the time, the action, the MK403 point and the object's first part (issue #12): a
-- payload that must go (a person's name after the Service's retention period, MK403 p.25.4)
-- can then be erased (`erased_at`, µs; the salt goes too, so the payload cannot be guessed
-- back from its digest) while the log still verifies. Rows sealed before this version have
-- no digest and keep their payload (their hashes cover it).
ALTER TABLE audit ADD COLUMN payload_hash TEXT;
ALTER TABLE audit ADD COLUMN payload_salt TEXT;
ALTER TABLE audit ADD COLUMN erased_at BIGINT;
