-- 003: what a rebuild needs to settle the records of a lost epoch from
-- MySQL alone: the claim's number in its epoch's claim sequence, the numbers
-- of the claims of the same epoch its user held when it was made, and the
-- idempotency key of the join, so that a retry after a rebuild gets the
-- first answer.

ALTER TABLE participations
  ADD COLUMN claim_seq INT UNSIGNED NOT NULL DEFAULT 0 AFTER epoch,
  ADD COLUMN held TEXT NULL AFTER claim_seq,
  ADD COLUMN idempotency_key VARCHAR(128) NOT NULL DEFAULT '' AFTER held;
