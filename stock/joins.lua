-- joins.lua: adds one instance's counts of an activity's joins, flushed
-- about once a second, and keeps the busiest second.
--
-- KEYS[1] meta hash: without it the activity has no state here (never
--         opened, or dropped after the retention) and nothing is written
-- KEYS[2] sale hash: soldOut, limitReached, busy, peak, peakAt
-- KEYS[3] joins hash: Unix second -> joins answered in it
-- KEYS[4] winners hash: Unix second -> tokens handed out in it
-- ARGV[1..3] joins turned away sold out, at the limit, busy
-- ARGV[4..] triples: Unix second, joins, winners
-- Returns 1 added; 0 dropped (no state).

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local names = {'soldOut', 'limitReached', 'busy'}
for i = 1, 3 do
  local n = tonumber(ARGV[i])
  if n > 0 then
    redis.call('HINCRBY', KEYS[2], names[i], n)
  end
end
local peak = tonumber(redis.call('HGET', KEYS[2], 'peak') or '0')
for i = 4, #ARGV, 3 do
  local sec, joins, winners = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  if joins > 0 then
    local total = redis.call('HINCRBY', KEYS[3], sec, joins)
    if total > peak then
      peak = total
      redis.call('HSET', KEYS[2], 'peak', total, 'peakAt', sec)
    end
  end
  if winners > 0 then
    redis.call('HINCRBY', KEYS[4], sec, winners)
  end
end
return 1
