-- claim.lua: claims one numbered stock slot of an activity for a user, in one
-- round trip (fence.lua, bucket.lua and record.lua are loaded in front of
-- it). INCR of the used counter hands out slot number n; the slot is locked
-- with SET NX PX on KEYS[6]..n ("seckill:{42}:lock:42_17"). When n is still
-- held (a number that came back by DECR while a claim in flight holds it),
-- the first number not taken is found with BITPOS in the slots bitmap
-- instead: one exists, because the used counter counts every held slot, and
-- the search is a scan of words, well under a millisecond at a stock of
-- 10,000,000, whatever the layout.
--
-- Every claim gets the next number of the epoch's claim sequence, and the
-- user's entry in the users hash (bucket.lua) lists the claims the user
-- holds of this epoch until their records are settled, after a count of the
-- others. The claim returns the sequence numbers the user held before it;
-- its participation event carries them, so that a rebuild can tell which
-- earlier claims of the user had been given back by then (a claim whose
-- record is settled valid is never in doubt).
--
-- KEYS[1] meta hash: stock, limit, open ("1"/"0"), begin, end (unix ms),
--         epoch, replid (the stamp of fence.lua), seq (the last claim
--         sequence number of the epoch), ub (the number of user buckets);
--         a shard's also base and size (see below)
-- KEYS[2] used counter: slots claimed or issued
-- KEYS[3] users bucket prefix: userId -> "N 7 12" (see bucket.lua)
-- KEYS[4] slots bitmap: bit n set while slot n is claimed or issued
-- KEYS[5] leases sorted set: a lease (record.lua) -> its deadline (unix ms)
-- KEYS[6] lock key prefix; the lock of slot n is KEYS[6]..n (same hash tag)
-- KEYS[7] idempotency bucket prefix: "user:key" -> the join's answer,
--         pending, answered or "s" (record.lua)
-- KEYS[8] held hash: userId -> the tokens issued to them and not settled
--         yet, "t1 t2 ..." (record.lua)
-- ARGV[1] userId
-- ARGV[2] claimId (the lock's value)
-- ARGV[3] lease in milliseconds
-- ARGV[4] idempotency field (bucket.lua), or "" for none
-- Returns {code, ...}:
--   {1, slot, epoch, seq, held} claimed; held: the user's claims of this
--                        epoch before this one, "7 12"
--   {2}                 sold out: every slot is issued (final)
--   {3, held, n}        per-user limit reached; held lists the user's tokens
--                       not settled yet, n counts those settled (in MySQL)
--   {4}                 not open now
--   {5}                 no live state for the activity (lost, or fenced off:
--                       never count from zero or from a stale snapshot)
--   {6}                 no free number although the counter says there is one
--   {7, answer}         a retry of a confirmed join: its first answer; "s"
--                       when its record is settled (read it from MySQL)
--   {8}                 a retry of a join still in flight
--   {9}                 every slot is taken, but some only by claims in
--                       flight: one may still be given back

local meta = redis.call('HMGET', KEYS[1], 'stock', 'limit', 'open', 'begin', 'end', 'epoch', 'replid', 'ub', 'base', 'size')
local usedRaw = redis.call('GET', KEYS[2])
local ub = tonumber(meta[8])
if not meta[1] or not usedRaw or not ub or meta[7] ~= live_id() then
  return {5}
end
local idem = ARGV[4]
local usersKey, field, bucket = user_entry(KEYS[3], ub, ARGV[1])
local idemKey = KEYS[7] .. bucket
if idem ~= '' then
  local prev = redis.call('HGET', idemKey, idem)
  if prev then
    if prev == 's' or is_answered(prev) then
      return {7, prev}
    end
    local slot, claimId, seq = read_pending(prev)
    if slot and redis.call('ZSCORE', KEYS[5], lease(slot, claimId, seq, ARGV[1])) then
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
local settled, mine = holds(redis.call('HGET', usersKey, field))
if settled + #mine >= tonumber(meta[2]) then
  return {3, redis.call('HGET', KEYS[8], ARGV[1]) or '', settled}
end
local stock = tonumber(meta[1])
-- A shard of a sharded activity (shard.go) owns some of the activity's
-- numbers: base + n is where its n-th claim looks first, and size is the
-- highest number of the activity; one shard alone owns them all.
local base = tonumber(meta[9]) or 0
local size = tonumber(meta[10]) or stock

-- All taken: final only when no claim is in flight.
local function taken()
  if redis.call('ZCARD', KEYS[5]) > 0 then
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
  return redis.call('SET', KEYS[6] .. slot, ARGV[2], 'NX', 'PX', ARGV[3])
end

local slot = nil
if base + n >= 1 and base + n <= size and take(base + n) then
  slot = base + n
else
  -- Collision: the first number not taken. Bits past the bitmap's end are
  -- clear, and BITPOS does not look past it when given an end.
  local c = redis.call('BITPOS', KEYS[4], 0, 1, size, 'BIT')
  if c < 1 then
    c = redis.call('STRLEN', KEYS[4]) * 8
  end
  if c >= 1 and c <= size and take(c) then
    slot = c
  end
  if not slot then
    -- A lock without its bit (a claim of a state from an earlier version):
    -- it expires with its lease, and a retry finds the number.
    redis.call('DECR', KEYS[2])
    return {6}
  end
end
redis.call('SETBIT', KEYS[4], slot, 1)
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('ZADD', KEYS[5], now + tonumber(ARGV[3]), lease(slot, ARGV[2], seq, ARGV[1]))
local after = {unpack(mine)}
after[#after + 1] = seq
set_holds(usersKey, field, settled, after)
if idem ~= '' then
  redis.call('HSET', idemKey, idem, pending(slot, ARGV[2], meta[6], seq))
end
return {1, slot, tonumber(meta[6]), seq, table.concat(mine, ' ')}
