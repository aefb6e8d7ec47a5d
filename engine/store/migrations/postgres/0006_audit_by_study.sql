-- A study's audit read by study, in order (Store::audit_of): the study an event is about is
-- the first part of its object (`study`, `study/step`, `study/step/subject`; `account/…` and
-- `audit` are no study's: those ids are reserved). Computed from the object, which the chain
-- covers, never stored apart from it: a database writer cannot move an event to another
-- study's page without rewriting the object, which `audit verify` catches.
ALTER TABLE audit ADD COLUMN study TEXT GENERATED ALWAYS AS (split_part(object, '/', 1)) STORED;
CREATE INDEX audit_by_study ON audit (study, seq);
