-- settle.lua: tells what became of claims whose participation records wait
-- in MySQL as pending.
--
-- KEYS[1] leases sorted set
-- KEYS[2] confirmed hash
-- KEYS[3] used counter (its absence means the activity's state is lost)
-- ARGV    triples: slot, claimId, userId
-- Returns one code per claim: 1 confirmed (the record is valid), 0 still in
-- flight (ask again later), -1 given back (the record is void), 2 unknown
-- (no state: never decide from it).

local out = {}
local known = redis.call('EXISTS', KEYS[3]) == 1
for i = 1, #ARGV, 3 do
  local r
  if not known then
    r = 2
  elseif redis.call('HEXISTS', KEYS[2], ARGV[i + 1]) == 1 then
    r = 1
  elseif redis.call('ZSCORE', KEYS[1], ARGV[i] .. ':' .. ARGV[i + 1] .. ':' .. ARGV[i + 2]) then
    r = 0
  else
    r = -1
  end
  out[#out + 1] = r
end
return out
