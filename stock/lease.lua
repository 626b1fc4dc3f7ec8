-- lease.lua: takes or renews a holder's lease on a share of the periodic
-- work (one activity's, or the work of no one activity).
--
-- KEYS[1] the lease key
-- ARGV[1] the holder
-- ARGV[2] how long it lasts, in ms; 0 gives the holder's lease back
-- Returns 1 when the holder has it now (taken free or renewed); 0 when
-- another holder has it, or it was given back.

local holder = redis.call('GET', KEYS[1])
if tonumber(ARGV[2]) == 0 then
  if holder == ARGV[1] then
    redis.call('DEL', KEYS[1])
  end
  return 0
end
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
