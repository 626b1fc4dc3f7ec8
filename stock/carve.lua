-- carve.lua: takes free numbers out of one shard of a sharded activity, to
-- move them to another whose numbers ran out (see shard.go; fence.lua and
-- bits.lua are loaded in front of it). The numbers are set in the shard's
-- bitmap, as a number it does not own, and its stock is lowered by as many,
-- atomically with its claims; the move is written down in the shard's
-- journal of moves, so that if the mover dies before receive.lua gave them
-- to the other shard, the job does (Store.Reap): nothing is lost in transit.
--
-- It looks first from where the shard's claims are not yet (its base, its
-- used counter and the free numbers it keeps), so that the shard's own
-- claims still find their numbers at once, then from the start.
--
-- KEYS[1] meta hash
-- KEYS[2] used counter
-- KEYS[3] slots bitmap
-- KEYS[4] journal of moves: move id -> "to:epoch:at/n:seq:a b a b ...", at
--         in unix seconds, n the shard's carve number (meta field "carves",
--         one more each carve), seq the shard's claim sequence number then
-- KEYS[5] ownership bitmap: the numbers taken are no longer the shard's
-- KEYS[6] the shard's copy of the activity's state lock: while a rebuild of
--         another shard holds it, no number moves (Store.BeginShardRebuild)
-- ARGV[1] how many numbers to take at most
-- ARGV[2] the move's id
-- ARGV[3] the shard they go to
-- ARGV[4] the most runs of numbers to take
-- Returns {1, epoch, n, "a b a b ...", seq, carve number}: n numbers taken,
-- in those runs (n may be 0, and the carve number then 0); {0} no live
-- state.
local meta = redis.call('HMGET', KEYS[1], 'stock', 'replid', 'epoch', 'size', 'base', 'seq', 'owns')
local used = tonumber(redis.call('GET', KEYS[2]) or '')
if not meta[1] or meta[2] ~= live_id() or not used or not tonumber(meta[4]) then
  return {0}
end
local stock, size, base = tonumber(meta[1]), tonumber(meta[4]), tonumber(meta[5]) or 0
local want = math.min(tonumber(ARGV[1]), stock - used)
if want <= 0 or redis.call('EXISTS', KEYS[6]) == 1 then
  return {1, tonumber(meta[3]), 0, '', 0, 0}
end
local maxRuns = tonumber(ARGV[4])
local out, got = {}, 0
local function scan(from, to)
  local p = from
  while got < want and #out < 2 * maxRuns and p <= to do
    local a = redis.call('BITPOS', KEYS[3], 0, p, to, 'BIT')
    if a < 0 then
      return
    end
    local b = redis.call('BITPOS', KEYS[3], 1, a, to, 'BIT')
    if b < 0 then
      b = to + 1
    end
    local e = math.min(b - 1, a + want - got - 1)
    out[#out + 1] = a
    out[#out + 1] = e
    got = got + e - a + 1
    p = e + 1
  end
end
local start = math.max(1, math.min(size, base + used + 1 + (stock - used - want)))
scan(start, size)
if got < want and start > 1 then
  scan(1, start - 1)
end
for i = 1, #out, 2 do
  set_bits(KEYS[3], out[i], out[i + 1], 1)
  if meta[7] == '1' then
    set_bits(KEYS[5], out[i], out[i + 1], 0)
  end
end
local t = redis.call('TIME')
local seq = tonumber(meta[6]) or 0
local list = table.concat(out, ' ')
local carve = 0
if got > 0 then
  redis.call('HINCRBY', KEYS[1], 'stock', -got)
  carve = redis.call('HINCRBY', KEYS[1], 'carves', 1)
  redis.call('HSET', KEYS[4], ARGV[2], ARGV[3] .. ':' .. meta[3] .. ':' .. t[1] .. '/' .. carve .. ':' .. seq .. ':' .. list)
end
return {1, tonumber(meta[3]), got, list, seq, carve}
