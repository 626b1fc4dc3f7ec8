-- record.lua: the records the scripts keep of a claim, each built and read
-- here only, loaded in front of every script that writes or reads one (see
-- stock.go, where token and parseToken read the same tokens). Their fields
-- are joined by ":"; a claimId holds none, and a field that may (a userId)
-- comes last or is told apart by the fields around it.
--
-- A lease, "slot:claimId:seq:userId", is the member of a claim in flight in
-- the leases sorted set, its score the lease's deadline (unix ms). The slot
-- comes first in every layout of the keys, so that a clear finds the lock
-- of a lease of any version (lease_slot).
local function lease(slot, claimId, seq, userId)
  return slot .. ':' .. claimId .. ':' .. seq .. ':' .. userId
end

-- read_lease(member) returns slot, claimId, seq and userId; nil when member
-- is not a lease of this layout.
local function read_lease(member)
  return string.match(member, '^(%d+):([^:]+):(%d+):(.+)$')
end

local function lease_slot(member)
  return string.match(member, '^(%d+):')
end

-- A token, "slot:id:issuedAt:epoch" (issuedAt in unix ms), is a confirmed
-- claim whose record is not settled yet: in the held hash, under its userId
-- (several, "t1 t2 ..."), id is its claimId; in the confirmed hash, under its
-- claimId, id is its userId.
local function token(slot, id, issuedAt, epoch)
  return slot .. ':' .. id .. ':' .. issuedAt .. ':' .. epoch
end

-- read_token(v) returns slot, id, issuedAt and epoch; nil when v is not a
-- token.
local function read_token(v)
  return string.match(v, '^(%d+):([^:]+):(%d+):(%d+)$')
end

-- The idempotency answer of a join is pending(...) while its claim is in
-- flight, answered(its token) once confirmed (the answer a retry gets), and
-- "s" once its record is settled valid (the answer is in MySQL).
local function pending(slot, claimId, epoch, seq)
  return 'p:' .. slot .. ':' .. claimId .. ':' .. epoch .. ':' .. seq
end

-- read_pending(v) returns slot, claimId and seq; nil when v is not pending.
local function read_pending(v)
  return string.match(v, '^p:(%d+):([^:]+):%d+:(%d+)$')
end

local function answered(t)
  return 'f:' .. t
end

local function is_answered(v)
  return string.sub(v, 1, 2) == 'f:'
end
