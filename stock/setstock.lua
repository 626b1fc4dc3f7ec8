-- setstock.lua: changes the stock of an activity's live state (fence.lua is
-- loaded in front of it). It runs between two claims, as every script does,
-- so the check against the used counter and the new stock are one step with
-- respect to them: a claim after it sells against the new stock.
--
-- Numbers already handed out keep their slots: a stock lowered below a
-- number still held (a lower one was given back) leaves that slot as it
-- is, and the claims after it find a free number within the new stock
-- (claim.lua), since the used counter, which counts every held slot, is at
-- most the stock.
--
-- The number of user buckets (bucket.lua) stays the one of the open: a
-- stock raised far above it makes each bucket hold more users than a
-- listpack does, which costs memory, not time (a hash answers HGET in
-- constant time either way, and rebuild_clear.lua frees buckets in the
-- background); a rebuild counts them for the new stock.
--
-- KEYS[1] meta hash
-- KEYS[2] used counter
-- ARGV[1] the new stock
-- Returns {1} changed; {2, used} refused: more slots are claimed than the
-- new stock; {5} no live state for the activity.

local stamp = redis.call('HGET', KEYS[1], 'replid')
local used = tonumber(redis.call('GET', KEYS[2]) or '')
if not stamp or stamp ~= live_id() or not used then
  return {5}
end
if used > tonumber(ARGV[1]) then
  return {2, used}
end
redis.call('HSET', KEYS[1], 'stock', ARGV[1])
return {1}
