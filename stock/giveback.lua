-- giveback.lua: the give-back step shared by release.lua and reap.lua, which
-- are loaded with bucket.lua and this file in front of them. The caller has
-- already removed the claim's lease (the fence: only the first of confirm,
-- release and reap to remove it acts).
--
-- give_back(lock, used, users, slots, slot, claimId, userId, seq): deletes
-- the slot's lock if this claim still owns it, DECRs the used counter, takes
-- the claim's sequence number out of the user's entry (users: the key of the
-- user's bucket, or nil when the state has no buckets) and clears the slot's
-- bit, so the next collision finds the number.
local function give_back(lock, used, users, slots, slot, claimId, userId, seq)
  if redis.call('GET', lock) == claimId then
    redis.call('DEL', lock)
  end
  redis.call('DECR', used)
  if users then
    local settled, seqs = holds(redis.call('HGET', users, userId))
    local rest = without(seqs, seq)
    set_holds(users, userId, settled, rest)
  end
  redis.call('SETBIT', slots, slot, 0)
end

-- users_of(meta, prefix) returns a function giving the key of a user's
-- bucket in the state of the meta hash, or nil for a state without buckets.
local function users_of(meta, prefix)
  local ub = tonumber(redis.call('HGET', meta, 'ub'))
  return function(user)
    if ub then
      return user_key(prefix, ub, user)
    end
    return nil
  end
end
