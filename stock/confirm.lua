-- confirm.lua: turns a claim into an issued slot, if the claim still holds
-- its lease and its lock in the current epoch of the live state (fence.lua,
-- bucket.lua and record.lua are loaded in front of it), and remembers its
-- token (record.lua) until its participation record is settled valid in
-- MySQL (forget.lua): as confirmed, in the tokens the user holds, and as the
-- answer to a retry with the same idempotency key. The claim stays in the
-- user's entry of the users hash: a confirmed claim is held for good.
--
-- KEYS[1] leases sorted set
-- KEYS[2] the slot's lock key
-- KEYS[3] slots bitmap (its bit is set since the claim; kept for good)
-- KEYS[4] issued counter
-- KEYS[5] confirmed hash: claimId -> its token, of its userId
-- KEYS[6] meta hash
-- KEYS[7] held hash: userId -> its tokens, of their claimIds
-- KEYS[8] idempotency bucket prefix
-- ARGV[1] slot, ARGV[2] claimId, ARGV[3] userId, ARGV[4] issuedAt (unix ms),
-- ARGV[5] epoch of the claim, ARGV[6] idempotency field or "", ARGV[7] seq
-- Returns 1 confirmed; 0 the claim is not held (it was released, its lease was
-- given back, the state was rebuilt since, or it is not the live state); -1
-- the lease is there but the lock expired (the caller releases the claim).

local meta = redis.call('HMGET', KEYS[6], 'epoch', 'replid', 'ub')
if meta[1] ~= ARGV[5] or meta[2] ~= live_id() or not tonumber(meta[3]) then
  return 0
end
local member = lease(ARGV[1], ARGV[2], ARGV[7], ARGV[3])
if not redis.call('ZSCORE', KEYS[1], member) then
  return 0
end
if redis.call('GET', KEYS[2]) ~= ARGV[2] then
  return -1
end
redis.call('ZREM', KEYS[1], member)
redis.call('DEL', KEYS[2])
redis.call('SETBIT', KEYS[3], ARGV[1], 1)
redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[5], ARGV[2], token(ARGV[1], ARGV[3], ARGV[4], ARGV[5]))
local tok = token(ARGV[1], ARGV[2], ARGV[4], ARGV[5])
local held = redis.call('HGET', KEYS[7], ARGV[3])
redis.call('HSET', KEYS[7], ARGV[3], held and (held .. ' ' .. tok) or tok)
if ARGV[6] ~= '' then
  redis.call('HSET', (user_entry(KEYS[8], tonumber(meta[3]), ARGV[3])), ARGV[6], answered(tok))
end
return 1
