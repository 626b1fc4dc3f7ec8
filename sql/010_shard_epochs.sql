-- 010: the epoch of each shard of a sharded activity, "e0 e1 ...", once one
-- of its shards was rebuilt alone; '' while every shard is at the
-- activity's epoch (the last whole rebuild's, or the open's).

ALTER TABLE activities
  ADD COLUMN shard_epochs VARCHAR(1400) NOT NULL DEFAULT '' COMMENT 'epoch of each shard, space separated; empty: all at epoch' AFTER epoch;
