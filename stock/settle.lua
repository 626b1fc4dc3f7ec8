-- settle.lua: tells what became of claims whose participation records wait
-- in MySQL as pending (fence.lua and record.lua are loaded in front of it).
--
-- KEYS[1] leases sorted set
-- KEYS[2] confirmed hash
-- KEYS[3] meta hash (its epoch and replid; its absence means the state is
--         lost)
-- ARGV    quintuples: slot, claimId, userId, epoch of the claim, seq
-- Returns one code per claim: 1 confirmed (the record is valid), 0 still in
-- flight (ask again later), -1 given back, or made in an earlier epoch and
-- not settled by the rebuild (the record is void), 2 unknown (no live state:
-- lost, or a state that came back from a snapshot or a lagging replica;
-- never decide from it).

local out = {}
local meta = redis.call('HMGET', KEYS[3], 'epoch', 'replid')
local epoch = meta[1]
if meta[2] ~= live_id() then
  epoch = nil
end
for i = 1, #ARGV, 5 do
  local r
  if not epoch then
    r = 2
  elseif ARGV[i + 3] ~= epoch then
    r = -1
  elseif redis.call('HEXISTS', KEYS[2], ARGV[i + 1]) == 1 then
    r = 1
  elseif redis.call('ZSCORE', KEYS[1], lease(ARGV[i], ARGV[i + 1], ARGV[i + 4], ARGV[i + 2])) then
    r = 0
  else
    r = -1
  end
  out[#out + 1] = r
end
return out
