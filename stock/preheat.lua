-- preheat.lua: loads an activity's stock and opens it for claims, or, at the
-- end of a rebuild, writes the meta hash that makes the rebuilt state live.
-- Counters that already exist are kept, so a repeated preheat never resets a
-- sale, and a preheat never changes the epoch of a state that has one.
--
-- KEYS[1] meta hash
-- KEYS[2] used counter
-- KEYS[3] issued counter
-- ARGV[1] stock, ARGV[2] per-user limit, ARGV[3] begin, ARGV[4] end (unix ms),
-- ARGV[5] open ("1" or "0"), ARGV[6] epoch, ARGV[7] "1" to set the epoch even
-- when there is one (a rebuild), ARGV[8] the activity's creation time (unix
-- ms), which tells its state from one left by another activity of the same ID
-- Returns 1.

redis.call('SETNX', KEYS[2], 0)
redis.call('SETNX', KEYS[3], 0)
if ARGV[7] == '1' then
  redis.call('HSET', KEYS[1], 'epoch', ARGV[6])
else
  redis.call('HSETNX', KEYS[1], 'epoch', ARGV[6])
end
redis.call('HSET', KEYS[1], 'stock', ARGV[1], 'limit', ARGV[2], 'begin', ARGV[3], 'end', ARGV[4], 'open', ARGV[5],
  'created', ARGV[8])
return 1
