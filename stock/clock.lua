-- clock.lua: the time of the Redis node that holds an activity: the one
-- clock the claims of the activity go by (claim.lua reads it for beginAt and
-- endAt), so the job decides by it too.
--
-- KEYS[1] meta hash (only to route the call to the activity's node)
-- Returns {seconds, microseconds}.

return redis.call('TIME')
