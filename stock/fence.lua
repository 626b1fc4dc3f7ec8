-- fence.lua: the run-id fence, loaded in front of every script that reads or
-- changes an activity's live state (see stock.go).
--
-- An activity's meta hash carries the run_id of the Redis process that made
-- its state (preheat.lua, or the end of a rebuild). run_id changes on every
-- start of Redis and differs on a promoted replica, so a state that came
-- back from an RDB snapshot or an AOF, or was replicated to a replica that
-- took over, cannot be mistaken for the live one: whatever writes it lost,
-- it is "no state" until it is rebuilt from MySQL. All the claims and
-- confirms of one epoch therefore ran on one Redis process that lost nothing
-- in between.
--
-- run_id() returns the run_id of this Redis process (40 hex digits). A plain
-- find costs half of what a pattern match over the section does.

local function run_id()
  local info = redis.call('INFO', 'server')
  local i = string.find(info, 'run_id:', 1, true)
  return string.sub(info, i + 7, i + 46)
end
