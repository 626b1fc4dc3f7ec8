-- rebuild_add.lua: replays valid participations into an activity's state
-- during a rebuild.
--
-- KEYS[1] used counter
-- KEYS[2] issued counter
-- KEYS[3] users hash
-- KEYS[4] issued bitmap
-- KEYS[5] held hash
-- ARGV    quintuples: slot, claimId, userId, issuedAt (unix ms), epoch
-- Returns the number replayed.

local n = 0
for i = 1, #ARGV, 5 do
  local token = ARGV[i] .. ':' .. ARGV[i + 1] .. ':' .. ARGV[i + 3] .. ':' .. ARGV[i + 4]
  redis.call('SETBIT', KEYS[4], ARGV[i], 1)
  redis.call('HINCRBY', KEYS[3], ARGV[i + 2], 1)
  local held = redis.call('HGET', KEYS[5], ARGV[i + 2])
  redis.call('HSET', KEYS[5], ARGV[i + 2], held and (held .. ' ' .. token) or token)
  n = n + 1
end
redis.call('INCRBY', KEYS[1], n)
redis.call('INCRBY', KEYS[2], n)
return n
