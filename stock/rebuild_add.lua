-- rebuild_add.lua: replays valid participations into an activity's state
-- during a rebuild (fence.lua is loaded in front of it).
--
-- KEYS[1] used counter
-- KEYS[2] issued counter
-- KEYS[3] users hash: each replayed token adds a "p" to its user's entry
-- KEYS[4] slots bitmap: the bit of every replayed token set
-- KEYS[5] held hash
-- KEYS[6] idempotency hash
-- KEYS[7] the activity's state lock
-- ARGV[1] the replication ID rebuild_clear.lua answered
-- ARGV[2] the rebuilder's token of the state lock, ARGV[3] its TTL (ms)
-- ARGV[4..] sextuples: slot, claimId, userId, issuedAt (unix ms), epoch,
--         idempotency field ("userId:key") or ""
-- Returns the number replayed; -1 when Redis restarted since the rebuild
-- began, or the state lock is not the rebuilder's any more (nothing
-- written).

if replid() ~= ARGV[1] or redis.call('GET', KEYS[7]) ~= ARGV[2] then
  return -1
end
redis.call('PEXPIRE', KEYS[7], ARGV[3])
local n = 0
for i = 4, #ARGV, 6 do
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
