-- rebuild_clear.lua: first step of a rebuild: drops whatever is left of an
-- activity's state, with the locks of the claims still leased, so that
-- claims answer "no state" until rebuild_add.lua has replayed the valid
-- participations and preheat.lua writes the meta hash (fence.lua is loaded
-- in front of it).
--
-- KEYS[1] leases sorted set: "slot:claimId:userId" members
-- KEYS[2] lock key prefix; the lock of slot n is KEYS[2]..n
-- KEYS[3..] every other key of the activity
-- Returns the run_id of this Redis process: the rest of the rebuild writes
-- only to the same process, so a restart half way through (from a snapshot
-- holding part of the rebuild) cannot make a half-rebuilt state live.

for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  redis.call('DEL', KEYS[2] .. string.match(member, '^(%d+):'))
end
redis.call('DEL', KEYS[1], unpack(KEYS, 3))
return run_id()
