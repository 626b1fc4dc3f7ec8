-- giveback.lua: the give-back step shared by release.lua and reap.lua, which
-- are loaded with this file in front of them. The caller has already removed
-- the claim's lease (the fence: only the first of confirm, release and reap
-- to remove it acts).
--
-- give_back(lock, used, users, slots, slot, claimId, userId, seq): deletes
-- the slot's lock if this claim still owns it, DECRs the used counter, takes
-- the claim's sequence number out of the user's entry and clears the slot's
-- bit, so the next collision finds the number.

local function give_back(lock, used, users, slots, slot, claimId, userId, seq)
  if redis.call('GET', lock) == claimId then
    redis.call('DEL', lock)
  end
  redis.call('DECR', used)
  local rest, dropped = {}, false
  for w in string.gmatch(redis.call('HGET', users, userId) or '', '%S+') do
    if not dropped and w == seq then
      dropped = true
    else
      rest[#rest + 1] = w
    end
  end
  if #rest == 0 then
    redis.call('HDEL', users, userId)
  else
    redis.call('HSET', users, userId, table.concat(rest, ' '))
  end
  redis.call('SETBIT', slots, slot, 0)
end
