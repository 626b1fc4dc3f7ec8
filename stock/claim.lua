-- claim.lua: claims one numbered stock slot of an activity for a user, in one
-- round trip (fence.lua is loaded in front of it). INCR of the used counter
-- hands out slot number n; the slot is locked with SET NX PX on KEYS[7]..n
-- ("seckill:{42}:lock:42_17"). When n is still held (a number that came back
-- by DECR while a claim in flight holds it), a free number is taken instead:
-- first from the numbers given back, then by a scan of [1, n]. One of them is
-- free, because the used counter counts every held slot and n of them fit in
-- [1, n] (and if a lock from before a rebuild is in the way, by a scan of the
-- numbers above n).
--
-- Every claim gets the next number of the epoch's claim sequence, and the
-- user's entry in the users hash lists the claims the user holds: "p" for a
-- token of an earlier epoch, the sequence number for a claim of this epoch
-- (in flight or confirmed). The claim returns the sequence numbers the user
-- held before it; its participation event carries them, so that a rebuild
-- can tell which earlier claims of the user had been given back by then.
--
-- KEYS[1] meta hash: stock, limit, open ("1"/"0"), begin, end (unix ms),
--         epoch, replid, seq (the last claim sequence number of the epoch)
-- KEYS[2] used counter: slots claimed or issued
-- KEYS[3] users hash: userId -> the claims held, "p 7 12" (see above)
-- KEYS[4] issued bitmap: bit n set once slot n is issued for good
-- KEYS[5] free set: slot numbers given back
-- KEYS[6] leases sorted set: "slot:claimId:seq:userId" -> lease deadline
--         (unix ms)
-- KEYS[7] lock key prefix; the lock of slot n is KEYS[7]..n (same hash tag)
-- KEYS[8] idempotency hash: "userId:key" -> "p:slot:claimId:epoch:seq" while
--         in flight, "f:slot:claimId:issuedAt:epoch" once confirmed
-- KEYS[9] held hash: userId -> "slot:claimId:issuedAt:epoch ..." issued to them
-- ARGV[1] userId
-- ARGV[2] claimId (the lock's value)
-- ARGV[3] lease in milliseconds
-- ARGV[4] idempotency field "userId:key", or "" for none
-- Returns {code, ...}:
--   {1, slot, epoch, seq, held} claimed; held: the user's claims of this
--                        epoch before this one, "7 12"
--   {2}                 sold out: every slot is issued (final)
--   {3, held}           per-user limit reached; held lists the user's tokens
--   {4}                 not open now
--   {5}                 no live state for the activity (lost, or fenced off:
--                       never count from zero or from a stale snapshot)
--   {6}                 no free number although the counter says there is one
--   {7, "f:..."}        a retry of a confirmed join: its first answer
--   {8}                 a retry of a join still in flight
--   {9}                 every slot is taken, but some only by claims in
--                       flight: one may still be given back

local meta = redis.call('HMGET', KEYS[1], 'stock', 'limit', 'open', 'begin', 'end', 'epoch', 'replid')
local usedRaw = redis.call('GET', KEYS[2])
if not meta[1] or not usedRaw or meta[7] ~= replid() then
  return {5}
end
local idem = ARGV[4]
if idem ~= '' then
  local prev = redis.call('HGET', KEYS[8], idem)
  if prev then
    if string.sub(prev, 1, 2) == 'f:' then
      return {7, prev}
    end
    local slot, claimId, seq = string.match(prev, '^p:(%d+):([^:]+):%d+:(%d+)$')
    if slot and redis.call('ZSCORE', KEYS[6], slot .. ':' .. claimId .. ':' .. seq .. ':' .. ARGV[1]) then
      return {8}
    end
    -- The first attempt was given back: this one claims anew.
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if meta[3] ~= '1' or now < tonumber(meta[4]) or now >= tonumber(meta[5]) then
  return {4}
end
local holds = redis.call('HGET', KEYS[3], ARGV[1]) or ''
local count, mine = 0, {}
for w in string.gmatch(holds, '%S+') do
  count = count + 1
  if w ~= 'p' then mine[#mine + 1] = w end
end
if count >= tonumber(meta[2]) then
  return {3, redis.call('HGET', KEYS[9], ARGV[1]) or ''}
end
local stock = tonumber(meta[1])

-- All taken: final only when no claim is in flight.
local function taken()
  if redis.call('ZCARD', KEYS[6]) > 0 then
    return {9}
  end
  return {2}
end

-- Sold out needs no write: the check and the INCR below are one atomic step.
if tonumber(usedRaw) >= stock then
  return taken()
end
local n = redis.call('INCR', KEYS[2])
if n > stock then
  redis.call('DECR', KEYS[2])
  return taken()
end

local function take(slot)
  if redis.call('GETBIT', KEYS[4], slot) == 1 then
    return false
  end
  return redis.call('SET', KEYS[7] .. slot, ARGV[2], 'NX', 'PX', ARGV[3])
end

local slot = nil
if take(n) then
  slot = n
else
  -- Collision. Numbers in the free set that are held again are dropped:
  -- they return to the set when their holder gives them back.
  while true do
    local c = redis.call('SPOP', KEYS[5])
    if not c then break end
    c = tonumber(c)
    if take(c) then slot = c break end
  end
  if not slot then
    for c = n - 1, 1, -1 do
      if take(c) then slot = c break end
    end
  end
  if not slot then
    -- Only a lock left from before a rebuild, not counted in used, can make
    -- [1, n] full; such locks expire with their lease.
    -- Bounded, so that a script never holds Redis up for long: the lock
    -- expires with its lease and the claim after it finds the number.
    for c = n + 1, math.min(stock, n + 1024) do
      if take(c) then slot = c break end
    end
  end
  if not slot then
    redis.call('DECR', KEYS[2])
    return {6}
  end
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('ZADD', KEYS[6], now + tonumber(ARGV[3]), slot .. ':' .. ARGV[2] .. ':' .. seq .. ':' .. ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], holds == '' and tostring(seq) or (holds .. ' ' .. seq))
if idem ~= '' then
  redis.call('HSET', KEYS[8], idem, 'p:' .. slot .. ':' .. ARGV[2] .. ':' .. meta[6] .. ':' .. seq)
end
return {1, slot, tonumber(meta[6]), seq, table.concat(mine, ' ')}
