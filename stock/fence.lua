-- fence.lua: the replication-id fence, loaded in front of every script that
-- reads or changes an activity's live state (see stock.go).
--
-- An activity's meta hash carries, as "replid", the replication ID of the
-- Redis master that made its state (preheat.lua, or the end of a rebuild),
-- with the layout version of its keys.
-- Redis gives a master a new replication ID each time it starts as a master
-- (a restart from an RDB snapshot or an AOF included) and each time a replica
-- is promoted (a failover, a master demoted and promoted again), and only
-- then. So a state that came back from files, or that a replica took over
-- with, is never mistaken for the live one: whatever writes it lost, it is
-- "no state" until it is rebuilt from MySQL. All the claims and confirms of
-- one epoch therefore ran on one master history that lost nothing in
-- between.
--
-- A state written in another layout of the keys (by an earlier version of
-- the service) is not live either: it is rebuilt in this one.
--
-- live_id() returns the stamp of a live state on this master: its
-- replication ID (40 hex digits, found with a plain search, half the cost of
-- a pattern match over the section) and the layout version, "/2".

local function live_id()
  local info = redis.call('INFO', 'replication')
  local i = string.find(info, 'master_replid:', 1, true)
  return string.sub(info, i + 14, i + 53) .. '/2'
end
