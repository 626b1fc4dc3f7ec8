-- confirm.lua: turns a claim into an issued slot, if the claim still holds
-- its lease and its lock, and remembers it as confirmed until its
-- participation record is settled valid in MySQL.
--
-- KEYS[1] leases sorted set
-- KEYS[2] the slot's lock key
-- KEYS[3] issued bitmap
-- KEYS[4] issued counter
-- KEYS[5] confirmed hash: claimId -> "slot:userId:issuedAt"
-- ARGV[1] slot
-- ARGV[2] claimId
-- ARGV[3] userId
-- ARGV[4] issuedAt (unix ms)
-- Returns 1 confirmed; 0 the claim is not held (it was released or its lease
-- was given back); -1 the lease is there but the lock expired (the caller
-- releases the claim).

local member = ARGV[1] .. ':' .. ARGV[2] .. ':' .. ARGV[3]
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
redis.call('HSET', KEYS[5], ARGV[2], ARGV[1] .. ':' .. ARGV[3] .. ':' .. ARGV[4])
return 1
