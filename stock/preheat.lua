-- preheat.lua: loads an activity's stock and opens it for claims. Counters
-- that already exist are kept, so a repeated preheat never resets a sale.
--
-- KEYS[1] meta hash
-- KEYS[2] used counter
-- KEYS[3] issued counter
-- ARGV[1] stock, ARGV[2] per-user limit, ARGV[3] begin, ARGV[4] end (unix ms)
-- Returns 1.

redis.call('HSET', KEYS[1], 'stock', ARGV[1], 'limit', ARGV[2], 'begin', ARGV[3], 'end', ARGV[4], 'open', '1')
redis.call('SETNX', KEYS[2], 0)
redis.call('SETNX', KEYS[3], 0)
return 1
