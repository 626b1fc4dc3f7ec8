-- unlock.lua: deletes a lock only if its value is still ours.
--
-- KEYS[1] the lock key
-- ARGV[1] our value
-- Returns 1 deleted; 0 not ours (it expired and another took it).

if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
