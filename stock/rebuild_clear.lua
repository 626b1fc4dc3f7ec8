-- rebuild_clear.lua: first step of a rebuild: drops whatever is left of an
-- activity's state, with the locks of the claims still leased, so that
-- claims answer "no state" until rebuild_add.lua has replayed the valid
-- participations and preheat.lua writes the meta hash (fence.lua is loaded
-- in front of it). Every step of a rebuild is fenced by the activity's state
-- lock: it acts only while the lock still holds the rebuilder's token, and
-- renews it.
--
-- KEYS[1] leases sorted set: "slot:claimId:seq:userId" members
-- KEYS[2] lock key prefix; the lock of slot n is KEYS[2]..n
-- KEYS[3] the activity's state lock
-- KEYS[4..] every other key of the activity
-- ARGV[1] the rebuilder's token of the state lock, ARGV[2] its TTL (ms);
--         "" for a clear outside a rebuild (a preheat), not fenced
-- Returns the replication ID of this master: the rest of the rebuild writes
-- only to the same master history, so a restart half way through (from a
-- snapshot holding part of the rebuild) cannot make a half-rebuilt state
-- live; "" when the state lock is not the rebuilder's (nothing done).

if ARGV[1] ~= '' then
  if redis.call('GET', KEYS[3]) ~= ARGV[1] then
    return ''
  end
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  redis.call('DEL', KEYS[2] .. string.match(member, '^(%d+):'))
end
redis.call('DEL', KEYS[1], unpack(KEYS, 4))
return replid()
