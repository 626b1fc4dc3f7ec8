-- 008: when each activity opened and closed, the summary of its sale kept
-- at the close (it outlives the Redis state), and the orders of the list.

ALTER TABLE activities
  ADD COLUMN opened_at DATETIME(3) NULL COMMENT 'when it last opened' AFTER updated_at,
  ADD COLUMN closed_at DATETIME(3) NULL COMMENT 'when it closed' AFTER opened_at,
  ADD COLUMN summary_at DATETIME(3) NULL COMMENT 'when the summary was last written; NULL: none yet' AFTER closed_at,
  ADD COLUMN summary_winners BIGINT NOT NULL DEFAULT 0 AFTER summary_at,
  ADD COLUMN summary_sold_out BIGINT NOT NULL DEFAULT 0 AFTER summary_winners,
  ADD COLUMN summary_limit_reached BIGINT NOT NULL DEFAULT 0 AFTER summary_sold_out,
  ADD COLUMN summary_busy BIGINT NOT NULL DEFAULT 0 AFTER summary_limit_reached,
  ADD COLUMN summary_peak BIGINT NOT NULL DEFAULT 0 COMMENT 'most joins answered in one second' AFTER summary_busy,
  ADD COLUMN summary_peak_at DATETIME(3) NULL AFTER summary_peak,
  ADD KEY idx_activities_begin (begin_at),
  ADD KEY idx_activities_state_begin (state, begin_at);
