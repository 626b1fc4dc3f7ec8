-- close.lua: stops claims on an activity at once.
--
-- KEYS[1] meta hash
-- Returns 1 closed; 0 no state for the activity (nothing to close).

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'open', '0')
return 1
