-- rebuild_add.lua: replays valid participations into an activity's state
-- during a rebuild (fence.lua and bucket.lua are loaded in front of it).
-- Their records are valid in MySQL, so each keeps only what a settled token
-- keeps (forget.lua): its bit, a count in its user's entry, and "s" for its
-- idempotency key.
--
-- KEYS[1] used counter
-- KEYS[2] issued counter
-- KEYS[3] users bucket prefix: each replayed token adds one to its user's
--         settled count
-- KEYS[4] slots bitmap: the bit of every replayed token set
-- KEYS[5] idempotency bucket prefix
-- KEYS[6] the activity's state lock
-- KEYS[7] buckets counter: the most user buckets the state has had (what a
--         clear deletes)
-- KEYS[8] a shard's ownership bitmap, the bit of every replayed token set
--         (a sharded activity only)
-- ARGV[1] the stamp rebuild_clear.lua answered
-- ARGV[2] the rebuilder's token of the state lock, ARGV[3] its TTL (ms)
-- ARGV[4] the number of user buckets of the rebuilt state
-- ARGV[5..] triples: slot, userId, idempotency field (bucket.lua) or ""
-- Returns the number replayed; -1 when Redis restarted since the rebuild
-- began, or the state lock is not the rebuilder's any more (nothing
-- written).

if live_id() ~= ARGV[1] or redis.call('GET', KEYS[6]) ~= ARGV[2] then
  return -1
end
redis.call('PEXPIRE', KEYS[6], ARGV[3])
local ub = tonumber(ARGV[4])
if tonumber(redis.call('GET', KEYS[7]) or '0') < ub then
  redis.call('SET', KEYS[7], ub)
end
local n = 0
for i = 5, #ARGV, 3 do
  local user = ARGV[i + 1]
  redis.call('SETBIT', KEYS[4], ARGV[i], 1)
  if KEYS[8] then
    redis.call('SETBIT', KEYS[8], ARGV[i], 1)
  end
  local key, field = user_entry(KEYS[3], ub, user)
  redis.call('HINCRBY', key, field, 1)
  if ARGV[i + 2] ~= '' then
    redis.call('HSET', (user_entry(KEYS[5], ub, user)), ARGV[i + 2], 's')
  end
  n = n + 1
end
redis.call('INCRBY', KEYS[1], n)
redis.call('INCRBY', KEYS[2], n)
return n
