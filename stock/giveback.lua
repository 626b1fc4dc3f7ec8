-- giveback.lua: the give-back step shared by release.lua and reap.lua, which
-- are loaded with this file in front of them. The caller has already removed
-- the claim's lease (the fence: only the first of confirm, release and reap
-- to remove it acts).
--
-- give_back(lock, used, users, free, slot, claimId, userId): deletes the
-- slot's lock if this claim still owns it, DECRs the used counter, gives the
-- user's count back and offers the number to the next collision.

local function give_back(lock, used, users, free, slot, claimId, userId)
  if redis.call('GET', lock) == claimId then
    redis.call('DEL', lock)
  end
  redis.call('DECR', used)
  if redis.call('HINCRBY', users, userId, -1) <= 0 then
    redis.call('HDEL', users, userId)
  end
  redis.call('SADD', free, slot)
end
