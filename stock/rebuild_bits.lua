-- rebuild_bits.lua: writes the bitmap of a shard of a sharded activity
-- during a rebuild (fence.lua and bits.lua are loaded in front of it): first
-- every number set, as a number the shard does not own, then the runs of
-- free numbers the rebuild gives it cleared (see Store.rebuildShards).
--
-- KEYS[1] slots bitmap
-- KEYS[2] the activity's state lock (the shard's copy)
-- KEYS[3] ownership bitmap: the free numbers given are the shard's
-- KEYS[4] meta hash
-- KEYS[5] the moves received (receive.lua)
-- ARGV[1] the stamp rebuild_clear.lua answered
-- ARGV[2] the rebuilder's token of the state lock, ARGV[3] its TTL (ms)
-- ARGV[4] "fill" and the highest number in ARGV[5], "free" and the runs
--         "a b" from ARGV[5] on, "meta" and field value pairs of the meta
--         hash to write before it is made live, or "moved" and the ids of
--         moves to count received
-- Returns 1 written; -1 when Redis restarted since the rebuild began, or the
-- state lock is not the rebuilder's any more (nothing written).
if live_id() ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[2] then
  return -1
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if ARGV[4] == 'fill' then
  redis.call('DEL', KEYS[1], KEYS[3])
  set_bits(KEYS[1], 0, tonumber(ARGV[5]), 1)
elseif ARGV[4] == 'meta' then
  redis.call('HSET', KEYS[4], unpack(ARGV, 5))
elseif ARGV[4] == 'moved' then
  redis.call('SADD', KEYS[5], unpack(ARGV, 5))
else
  for _, r in ipairs((runs(ARGV, 5))) do
    set_bits(KEYS[1], r[1], r[2], 0)
    set_bits(KEYS[3], r[1], r[2], 1)
  end
end
return 1
