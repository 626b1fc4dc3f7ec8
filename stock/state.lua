-- state.lua: the live numbers of an activity (fence.lua is loaded in front
-- of it).
--
-- KEYS[1] meta hash
-- KEYS[2] used counter
-- KEYS[3] issued counter
-- KEYS[4] leases sorted set
-- KEYS[5] journal of moves (carve.lua)
-- Returns {1, used, issued, in flight, stock, moves not received yet, the
-- activity's stock as a sharded activity's first shard keeps it (0 for
-- others)}; {0} when there is no live state
-- (never made, lost, half way through a rebuild, or fenced off: it came back
-- from a snapshot or a lagging replica).

local stamped = redis.call('HGET', KEYS[1], 'replid')
local used = redis.call('GET', KEYS[2])
if not stamped or not used or stamped ~= live_id() then
  return {0}
end
local meta = redis.call('HMGET', KEYS[1], 'stock', 'total')
return {1, tonumber(used), tonumber(redis.call('GET', KEYS[3]) or '0'), redis.call('ZCARD', KEYS[4]),
  tonumber(meta[1]), redis.call('HLEN', KEYS[5]), tonumber(meta[2]) or 0}
