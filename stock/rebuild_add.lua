-- rebuild_add.lua: replays valid participations into an activity's state
-- during a rebuild (fence.lua is loaded in front of it).
--
-- KEYS[1] used counter
-- KEYS[2] issued counter
-- KEYS[3] users hash: each replayed token adds a "p" to its user's entry
-- KEYS[4] issued bitmap
-- KEYS[5] held hash
-- KEYS[6] idempotency hash
-- ARGV[1] the run_id rebuild_clear.lua answered
-- ARGV[2..] sextuples: slot, claimId, userId, issuedAt (unix ms), epoch,
--         idempotency field ("userId:key") or ""
-- Returns the number replayed; -1 when Redis restarted since the rebuild
-- began (nothing written).

if run_id() ~= ARGV[1] then
  return -1
end
local n = 0
for i = 2, #ARGV, 6 do
  local user = ARGV[i + 2]
  local token = ARGV[i] .. ':' .. ARGV[i + 1] .. ':' .. ARGV[i + 3] .. ':' .. ARGV[i + 4]
  redis.call('SETBIT', KEYS[4], ARGV[i], 1)
  local holds = redis.call('HGET', KEYS[3], user)
  redis.call('HSET', KEYS[3], user, holds and (holds .. ' p') or 'p')
  local held = redis.call('HGET', KEYS[5], user)
  redis.call('HSET', KEYS[5], user, held and (held .. ' ' .. token) or token)
  if ARGV[i + 5] ~= '' then
    redis.call('HSET', KEYS[6], ARGV[i + 5], 'f:' .. token)
  end
  n = n + 1
end
redis.call('INCRBY', KEYS[1], n)
redis.call('INCRBY', KEYS[2], n)
return n
