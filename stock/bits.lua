-- bits.lua: writes runs of bits of a slots bitmap, loaded in front of the
-- scripts of a sharded activity (see shard.go). A shard's bitmap has a bit
-- for every slot number of the activity: set while the slot is claimed or
-- issued, and for every number the shard does not own, so that the claims of
-- claim.lua find only the shard's free numbers.
--
-- set_bits(key, from, to, v) sets bits from..to (both in) to v, 0 or 1: the
-- whole bytes with SETRANGE, 64 KiB a call, and the bits at either end one
-- by one, so that a run of 10,000,000 costs a few milliseconds.
local function set_bits(key, from, to, v)
  if from > to then
    return
  end
  local first = math.floor((from + 7) / 8)
  local last = math.floor((to + 1) / 8) - 1
  if first > last then
    for b = from, to do
      redis.call('SETBIT', key, b, v)
    end
    return
  end
  for b = from, first * 8 - 1 do
    redis.call('SETBIT', key, b, v)
  end
  local byte = '\0'
  if v == 1 then
    byte = '\255'
  end
  local chunk = string.rep(byte, 65536)
  local i = first
  while i <= last do
    local n = math.min(last - i + 1, 65536)
    if n < 65536 then
      chunk = string.rep(byte, n)
    end
    redis.call('SETRANGE', key, i, chunk)
    i = i + n
  end
  for b = (last + 1) * 8, to do
    redis.call('SETBIT', key, b, v)
  end
end

-- runs(argv, from) reads the runs "a b" of numbers from argv[from] on and
-- returns them as a list of pairs, with how many numbers they hold and the
-- highest of them.
local function runs(argv, from)
  local out, count, top = {}, 0, 0
  for i = from, #argv - 1, 2 do
    local a, b = tonumber(argv[i]), tonumber(argv[i + 1])
    out[#out + 1] = {a, b}
    count = count + b - a + 1
    if b > top then
      top = b
    end
  end
  return out, count, top
end
