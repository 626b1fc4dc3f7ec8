-- rebuild_clear.lua: deletes an activity's state, with the locks of the
-- claims still leased: the first step of a rebuild (so that claims answer
-- "no state" until rebuild_add.lua has replayed the valid participations and
-- preheat.lua writes the meta hash), and what a preheat over a stale state
-- and the end of retention do (fence.lua and record.lua are loaded in front
-- of it). The first call deletes every key but the user buckets, and up to
-- a page of those; the caller calls again until none is left, so that a
-- state of 10,000,000 users never stalls Redis. Within a rebuild every call
-- is fenced by the activity's state lock: it acts only while the lock still
-- holds the rebuilder's token, and renews it.
--
-- KEYS[1] leases sorted set: leases (record.lua) of any layout
-- KEYS[2] lock key prefix; the lock of slot n is KEYS[2]..n
-- KEYS[3] the activity's state lock
-- KEYS[4] buckets counter: the user buckets 0..n-1 are left to delete
-- KEYS[5] users bucket prefix, KEYS[6] idempotency bucket prefix
-- KEYS[7..] every other key of the activity
-- ARGV[1] the rebuilder's token of the state lock, ARGV[2] its TTL (ms);
--         "" for a clear outside a rebuild, not fenced
-- ARGV[3] the most buckets to delete in this call
-- Returns {stamp, left}: the stamp of a live state on this master (the rest
-- of a rebuild writes only to the same master history, so a restart half
-- way through, from a snapshot holding part of the rebuild, cannot make a
-- half-rebuilt state live) and the buckets left to delete; {""} when the
-- state lock is not the rebuilder's (nothing done).

if ARGV[1] ~= '' then
  if redis.call('GET', KEYS[3]) ~= ARGV[1] then
    return {''}
  end
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  redis.call('DEL', KEYS[2] .. lease_slot(member))
end
redis.call('DEL', KEYS[1], unpack(KEYS, 7))
local left = tonumber(redis.call('GET', KEYS[4]) or '0')
local stop = math.max(0, left - tonumber(ARGV[3]))
-- UNLINK frees a bucket in the background: the buckets are counted at the
-- open, and a stock raised many times over since (setstock.lua) may have
-- made them large.
for b = left - 1, stop, -1 do
  redis.call('UNLINK', KEYS[5] .. b, KEYS[6] .. b)
end
if stop == 0 then
  redis.call('DEL', KEYS[4])
else
  redis.call('SET', KEYS[4], stop)
end
return {live_id(), stop}
