-- giveback.lua: the give-back step shared by release.lua and reap.lua, which
-- are loaded with bucket.lua and this file in front of them. The caller has
-- already removed the claim's lease (the fence: only the first of confirm,
-- release and reap to remove it acts).
--
-- give_back(lock, used, users, slots, slot, claimId, userId, seq): deletes
-- the slot's lock if this claim still owns it, DECRs the used counter, takes
-- the claim's sequence number out of the user's entry (users: the prefix of
-- the users buckets, and meta, the meta hash, say where; a state without
-- buckets has none) and clears the slot's bit, so the next collision finds
-- the number.
local function give_back(lock, used, users, meta, slots, slot, claimId, userId, seq)
  if redis.call('GET', lock) == claimId then
    redis.call('DEL', lock)
  end
  redis.call('DECR', used)
  local ub = tonumber(redis.call('HGET', meta, 'ub'))
  if ub then
    local key, field = user_entry(users, ub, userId)
    local settled, seqs = holds(redis.call('HGET', key, field))
    set_holds(key, field, settled, (without(seqs, seq)))
  end
  redis.call('SETBIT', slots, slot, 0)
end
