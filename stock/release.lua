-- release.lua: gives a claim back so its slot is sold again: DECR of the used
-- counter, the lock deleted if this claim still owns it, the user's count
-- given back and the number offered to the next collision. Removing the lease
-- is the fence: of confirm, release and the lease reaper, only the first to
-- remove it acts.
--
-- KEYS[1] leases sorted set
-- KEYS[2] the slot's lock key
-- KEYS[3] used counter
-- KEYS[4] users hash
-- KEYS[5] free set
-- ARGV[1] slot
-- ARGV[2] claimId
-- ARGV[3] userId
-- Returns 1 given back; 0 nothing to do (confirmed, released or reaped).

local member = ARGV[1] .. ':' .. ARGV[2] .. ':' .. ARGV[3]
if redis.call('ZREM', KEYS[1], member) == 0 then
  return 0
end
if redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('DEL', KEYS[2])
end
redis.call('DECR', KEYS[3])
if redis.call('HINCRBY', KEYS[4], ARGV[3], -1) <= 0 then
  redis.call('HDEL', KEYS[4], ARGV[3])
end
redis.call('SADD', KEYS[5], ARGV[1])
return 1
