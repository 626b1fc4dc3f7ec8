-- 009: the number of Redis shards an activity's stock is spread over; 1
-- for every activity made before.

ALTER TABLE activities
  ADD COLUMN shards SMALLINT UNSIGNED NOT NULL DEFAULT 1 COMMENT 'Redis shards the stock is spread over, 1 to 64' AFTER per_user_limit;
