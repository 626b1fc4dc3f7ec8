-- lookup.lua: finds a confirmed claim whose record is not settled yet in
-- MySQL (fence.lua is loaded in front of it).
--
-- KEYS[1] confirmed hash: claimId -> its token, of its userId (record.lua)
-- KEYS[2] meta hash
-- ARGV[1] claimId
-- Returns {1, token} found; {0} not confirmed in the live state; {2} no live
-- state (lost or fenced off: do not conclude).

if redis.call('HGET', KEYS[2], 'replid') ~= live_id() then
  return {2}
end
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then
  return {0}
end
return {1, v}
