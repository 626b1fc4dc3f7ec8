-- hold.lua: holds or lets go the moves of numbers of a live shard of a
-- sharded activity while another of its shards, lost, is rebuilt alone (see
-- Store.BeginShardRebuild; fence.lua is loaded in front of it). Held, the
-- shard carves and receives nothing (carve.lua, receive.lua), so that what
-- it owns and what it has on its way stays put while the lost shard's
-- numbers are told; and it refuses for good the moves the lost shard
-- carved before its rebuild (and takes those it carves after it, numbered
-- from 1 again).
--
-- KEYS[1] meta hash
-- KEYS[2] the shard's copy of the activity's state lock
-- KEYS[3] journal of moves (carve.lua)
-- ARGV[1] "hold" or "free"
-- ARGV[2] the rebuilder's token of the state lock, ARGV[3] its TTL (ms)
-- With "hold": ARGV[4] the lost shard's number, ARGV[5] the epoch it is
-- rebuilt in. With "free": ARGV[4..] the ids of the moves to the lost shard
-- the rebuild gave it, dropped from the journal.
-- Returns with "hold" 1 held; 0 the shard is not live, or keeps no
-- ownership bitmap (made before it had one); -1 another holder has the
-- lock. With "free" 1, or 0 when the lock is not the rebuilder's any more.
if ARGV[1] == 'hold' then
  local meta = redis.call('HMGET', KEYS[1], 'replid', 'owns')
  if meta[1] ~= live_id() or meta[2] ~= '1' then
    return 0
  end
  local held = redis.call('GET', KEYS[2])
  if held and held ~= ARGV[2] then
    return -1
  end
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  redis.call('HSET', KEYS[1], 'from:' .. ARGV[4], ARGV[5])
  -- The rebuilt shard numbers its carves again from 1, in its new epoch.
  redis.call('HDEL', KEYS[1], 'after:' .. ARGV[4])
  return 1
end
if redis.call('GET', KEYS[2]) ~= ARGV[2] then
  return 0
end
if #ARGV >= 4 then
  redis.call('HDEL', KEYS[3], unpack(ARGV, 4))
end
redis.call('DEL', KEYS[2])
return 1
