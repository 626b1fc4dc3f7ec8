-- renew.lua: renews a lock while it still holds its holder's token, so that
-- a long rebuild of a sharded activity keeps the activity's state lock and
-- every shard's copy of it (see Store.rebuildShards); a lock lost is never
-- taken again here.
--
-- KEYS[1] the lock
-- ARGV[1] the holder's token, ARGV[2] the lock's TTL (ms)
-- Returns 1 renewed; 0 the lock is not the holder's any more.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
