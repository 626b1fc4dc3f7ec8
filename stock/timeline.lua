-- timeline.lua: the seconds of an activity's sale in which joins were
-- answered, within a window.
--
-- KEYS[1] joins hash: Unix second -> joins
-- KEYS[2] winners hash: Unix second -> winners
-- ARGV[1] first second, ARGV[2] last second (at most 3600 apart)
-- Returns a flat list of triples, oldest first: second, joins, winners,
-- for the seconds with joins.

local from, to = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
local fields = {}
for sec = from, to do
  fields[#fields + 1] = tostring(sec)
end
if #fields == 0 then
  return out
end
local joins = redis.call('HMGET', KEYS[1], unpack(fields))
local winners = redis.call('HMGET', KEYS[2], unpack(fields))
for i = 1, #fields do
  if joins[i] then
    out[#out + 1] = tonumber(fields[i])
    out[#out + 1] = tonumber(joins[i])
    out[#out + 1] = tonumber(winners[i] or '0')
  end
end
return out
