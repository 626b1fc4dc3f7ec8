-- receive.lua: gives numbers carved from another shard of a sharded
-- activity (carve.lua) to this one, once (see shard.go; fence.lua and
-- bits.lua are loaded in front of it): their bits are cleared, its stock
-- raised by as many, and the move's id kept, so that the mover and the job
-- may both try it. The shard's claim sequence goes on from the giver's at
-- least, so that a later claim of a number is numbered after every earlier
-- one on the giver (DecideLost takes the last claim of a slot by it). A
-- raise of the activity's stock is received the same way
-- by its first shard, from no shard: the numbers past the old stock.
--
-- KEYS[1] meta hash
-- KEYS[2] slots bitmap
-- KEYS[3] the moves received: a set of move ids
-- KEYS[4] ownership bitmap: the numbers received are the shard's
-- KEYS[5] the shard's copy of the activity's state lock: while a rebuild of
--         another shard holds it, no number moves (Store.BeginShardRebuild)
-- ARGV[1] the move's id
-- ARGV[2] the epoch the numbers were carved in: the giver's
-- ARGV[3] for a raise, the activity's stock before it (the raise is taken
--         only from it); "" for a move
-- ARGV[4] the giver's claim sequence number at the carve
-- ARGV[5] the giver's number of shard, "" for a raise
-- ARGV[6] the giver's carve number (carve.lua; 0 when not known)
-- ARGV[7..] the runs "a b" of the numbers
-- Returns 1 received (now or before); 0 no live state, or moves held
-- (try again later); -1 the giver or this shard was rebuilt since the carve,
-- which made the numbers again from MySQL: the giver's epoch is not the
-- one this shard knows (meta field "from:<shard>", or its own epoch), or
-- this shard was rebuilt alone after the carve (its number is at most the
-- giver's when the rebuild told the shard's numbers, meta field
-- "after:<shard>") and the rebuild did not count the move received (it
-- gave the numbers then, or they had come already, or they went on since);
-- -2 a raise from another stock.
local meta = redis.call('HMGET', KEYS[1], 'replid', 'epoch', 'size', 'total', 'seq', 'owns')
if meta[1] ~= live_id() or not tonumber(meta[3]) or redis.call('EXISTS', KEYS[5]) == 1 then
  return 0
end
local giver = meta[2]
if ARGV[5] ~= '' then
  giver = redis.call('HGET', KEYS[1], 'from:' .. ARGV[5]) or giver
end
if giver ~= ARGV[2] then
  return -1
end
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 1 then
  return 1
end
if ARGV[5] ~= '' then
  local after = tonumber(redis.call('HGET', KEYS[1], 'after:' .. ARGV[5]) or '')
  if after and (tonumber(ARGV[6]) or 0) <= after then
    return -1
  end
end
if ARGV[3] ~= '' and meta[4] ~= ARGV[3] then
  return -2
end
local list, count, top = runs(ARGV, 7)
local size = tonumber(meta[3])
if top > size then
  set_bits(KEYS[2], size + 1, top, 1)
  redis.call('HSET', KEYS[1], 'size', top)
end
for _, r in ipairs(list) do
  set_bits(KEYS[2], r[1], r[2], 0)
  if meta[6] == '1' then
    set_bits(KEYS[4], r[1], r[2], 1)
  end
end
redis.call('HINCRBY', KEYS[1], 'stock', count)
redis.call('SADD', KEYS[3], ARGV[1])
if (tonumber(meta[5]) or 0) < tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], 'seq', ARGV[4])
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'total', top)
end
return 1
