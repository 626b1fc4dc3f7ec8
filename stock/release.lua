-- release.lua: gives a claim back so its slot is sold again (see
-- giveback.lua, loaded in front of this file, with record.lua).
--
-- KEYS[1] leases sorted set
-- KEYS[2] the slot's lock key
-- KEYS[3] used counter
-- KEYS[4] users bucket prefix
-- KEYS[5] slots bitmap
-- KEYS[6] meta hash (the number of user buckets)
-- ARGV[1] slot
-- ARGV[2] claimId
-- ARGV[3] userId
-- ARGV[4] seq
-- Returns 1 given back; 0 nothing to do (confirmed, released or reaped).

if redis.call('ZREM', KEYS[1], lease(ARGV[1], ARGV[2], ARGV[4], ARGV[3])) == 0 then
  return 0
end
give_back(KEYS[2], KEYS[3], KEYS[4], KEYS[6], KEYS[5], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return 1
