-- A study's audit read by study, in order (Store::audit_of): the study an event is about is
-- the first part of its object (`study`, `study/step`, `study/step/subject`; `account/…` and
-- `audit` are no study's: those ids are reserved). Derived, not sealed: the chain and its
-- checkpoints cover the object it comes from.
ALTER TABLE audit ADD COLUMN study TEXT;
UPDATE audit SET study = split_part(object, '/', 1);
CREATE INDEX audit_by_study ON audit (study, seq);
