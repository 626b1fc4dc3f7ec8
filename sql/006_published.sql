-- 006: the outbox of the tokens topic. A valid record is published to the
-- tokens topic (SECKILL_TOKENS_TOPIC) once its record is valid; published
-- says that the broker acknowledged it, so that the publisher, which reads
-- the valid records not yet published oldest first, takes each up once and
-- a crash between the acknowledgement and the mark only publishes it again.
-- A flag rather than a time: the index seek reads one value, and a record
-- never goes back.

ALTER TABLE participations
  ADD COLUMN published TINYINT(1) NOT NULL DEFAULT 0 COMMENT '1 once the record, valid, was acknowledged on the tokens topic' AFTER status,
  ADD KEY idx_participations_outbox (published, status, recorded_at);

-- The records valid before this migration predate the topic: their tokens
-- were handed out and are found with GET /api/v1/tokens/{token}; they are
-- marked published and never sent, so that the topic starts with the
-- tokens settled from now on instead of replaying the whole history.
UPDATE participations SET published = 1 WHERE status = 'valid';
