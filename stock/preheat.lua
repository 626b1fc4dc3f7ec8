-- preheat.lua: loads an activity's stock and opens it for claims, or, at the
-- end of a rebuild, writes the meta hash that makes the rebuilt state live
-- (fence.lua is loaded in front of it). The meta hash is stamped with
-- live_id() of this master. Counters that already exist are kept, so a
-- repeated preheat never resets a sale, and a preheat never changes the
-- epoch of a state that has one; but a state stamped by another master
-- history (it came back from files, or from a replica that took over) or
-- another layout is never made live again by a preheat: only a rebuild
-- does that.
--
-- KEYS[1] meta hash
-- KEYS[2] used counter
-- KEYS[3] issued counter
-- KEYS[4] the activity's state lock (a rebuild only)
-- KEYS[5] buckets counter (see rebuild_clear.lua)
-- KEYS[6] slots bitmap
-- KEYS[7] ownership bitmap of a shard (see shard.go): the numbers it owns
-- ARGV[1] stock, ARGV[2] per-user limit, ARGV[3] begin, ARGV[4] end (unix ms),
-- ARGV[5] open ("1" or "0"), ARGV[6] epoch, ARGV[7] "1" for a rebuild: set
-- the epoch even when there is one and start the claim sequence again,
-- ARGV[8] the activity's creation time (unix ms), which tells its state from
-- one left by another activity of the same ID; with a rebuild, ARGV[9] the
-- stamp rebuild_clear.lua answered and ARGV[10] the rebuilder's token of
-- the state lock; ARGV[11] the number of user buckets (bucket.lua), kept
-- when a state has it already, but for a rebuild; for a shard of a sharded
-- activity (shard.go, with bits.lua in front), ARGV[12] its base, ARGV[13]
-- the activity's stock (the highest number) and from ARGV[14] on the runs
-- "a b" of the numbers it owns: a new state gets a bitmap with every other
-- number set (a rebuild has made its own), and "" in ARGV[12] otherwise
-- Returns 1 written; 0 not written: the state there is not live (stale), or
-- the rebuild lost its state lock or its master history; -1 not written: a
-- live state of one shard there claimed more slots than the stock.

local id = live_id()
if ARGV[7] == '1' then
  if ARGV[9] ~= id or redis.call('GET', KEYS[4]) ~= ARGV[10] then
    return 0
  end
  -- The rebuild of one shard of a sharded activity wrote its claim
  -- sequence already (it goes on from the other shards'); every other
  -- rebuild cleared the meta hash and starts it again.
  redis.call('HSET', KEYS[1], 'epoch', ARGV[6], 'ub', ARGV[11])
  redis.call('HSETNX', KEYS[1], 'seq', 0)
else
  -- Anything but a live state is stale: a meta hash of another master
  -- history or layout, or user buckets without one (a clear cut short).
  local stamped = redis.call('HGET', KEYS[1], 'replid')
  if (stamped and stamped ~= id) or (not stamped and redis.call('EXISTS', KEYS[1], KEYS[5]) > 0) then
    return 0
  end
  -- A state kept from an open that failed keeps the slots it claimed: a
  -- stock lowered below them since is refused (-1).
  if stamped and (ARGV[12] or '') == '' and tonumber(redis.call('GET', KEYS[2]) or '0') > tonumber(ARGV[1]) then
    return -1
  end
  redis.call('HSETNX', KEYS[1], 'epoch', ARGV[6])
  redis.call('HSETNX', KEYS[1], 'seq', 0)
  redis.call('HSETNX', KEYS[1], 'ub', ARGV[11])
end
-- A shard keeps the stock of its state: numbers move between shards
-- (carve.lua, receive.lua).
local stock = ARGV[1]
if ARGV[12] and ARGV[12] ~= '' then
  if ARGV[7] == '1' then
    redis.call('HSET', KEYS[1], 'base', ARGV[12], 'size', ARGV[13], 'total', ARGV[13], 'made', ARGV[13], 'owns', 1)
  elseif redis.call('HSETNX', KEYS[1], 'size', ARGV[13]) == 1 then
    redis.call('HSET', KEYS[1], 'base', ARGV[12], 'total', ARGV[13], 'made', ARGV[13], 'owns', 1)
    redis.call('DEL', KEYS[6], KEYS[7])
    set_bits(KEYS[6], 0, tonumber(ARGV[13]), 1)
    for _, r in ipairs((runs(ARGV, 14))) do
      set_bits(KEYS[6], r[1], r[2], 0)
      set_bits(KEYS[7], r[1], r[2], 1)
    end
  else
    stock = redis.call('HGET', KEYS[1], 'stock') or stock
  end
end
local ub = tonumber(redis.call('HGET', KEYS[1], 'ub'))
if tonumber(redis.call('GET', KEYS[5]) or '0') < ub then
  redis.call('SET', KEYS[5], ub)
end
redis.call('SETNX', KEYS[2], 0)
redis.call('SETNX', KEYS[3], 0)
redis.call('HSET', KEYS[1], 'stock', stock, 'limit', ARGV[2], 'begin', ARGV[3], 'end', ARGV[4], 'open', ARGV[5],
  'created', ARGV[8], 'replid', id)
return 1
