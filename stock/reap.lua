-- reap.lua: gives back the claims whose lease has run out (their process
-- died or stalled), so their slots are sold again (see giveback.lua, loaded
-- in front of this file, with record.lua). A late confirm of a reaped claim
-- fails, and its participation event is settled as void. It needs nothing
-- but Redis, so claims are reaped while MySQL is down too.
--
-- KEYS[1] leases sorted set: a lease (record.lua) -> its deadline (unix ms)
-- KEYS[2] lock key prefix; the lock of slot n is KEYS[2]..n
-- KEYS[3] used counter
-- KEYS[4] users bucket prefix
-- KEYS[5] slots bitmap
-- KEYS[6] meta hash (the number of user buckets)
-- ARGV[1] the most claims to reap in this call
-- Returns the number of claims given back.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(expired) do
  local slot, claimId, seq, userId = read_lease(member)
  redis.call('ZREM', KEYS[1], member)
  if slot then
    give_back(KEYS[2] .. slot, KEYS[3], KEYS[4], KEYS[6], KEYS[5], slot, claimId, userId, seq)
  end
end
return #expired
