-- forget.lua: drops what Redis keeps of confirmed claims once their
-- participation records are settled valid in MySQL, leaving only what the
-- hot path needs: the slot's bit and a count in the user's entry (fence.lua,
-- bucket.lua and record.lua are loaded in front of it). The token (record.lua)
-- leaves the confirmed and held hashes (a lookup or a limit answer reads it
-- from MySQL now), the claim's sequence number becomes one more settled
-- token in the user's entry (a valid record is never in doubt, so no later
-- claim needs to list it), and the idempotency answer becomes "s" (read it
-- from MySQL). A claim
-- that is not in the confirmed hash (forgotten already, or of a state
-- rebuilt since) is skipped, and nothing is done to a state that is not
-- live: it is only ever cleared and rebuilt.
--
-- KEYS[1] confirmed hash: claimId -> its token, of its userId
-- KEYS[2] held hash: userId -> its tokens, of their claimIds
-- KEYS[3] users bucket prefix
-- KEYS[4] idempotency bucket prefix
-- KEYS[5] meta hash (the number of user buckets, the stamp)
-- ARGV    triples: claimId, seq, idempotency field (bucket.lua) or ""
-- Returns the number of claims forgotten.

local meta = redis.call('HMGET', KEYS[5], 'ub', 'replid')
local ub = tonumber(meta[1])
if not ub or meta[2] ~= live_id() then
  return 0
end
local n = 0
for i = 1, #ARGV, 3 do
  local claimId, seq, idem = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local v = redis.call('HGET', KEYS[1], claimId)
  local slot, user, issuedAt, epoch
  if v then
    slot, user, issuedAt, epoch = read_token(v)
  end
  if slot then
    redis.call('HDEL', KEYS[1], claimId)
    local tok = token(slot, claimId, issuedAt, epoch)
    local tokens = {}
    for w in string.gmatch(redis.call('HGET', KEYS[2], user) or '', '%S+') do
      tokens[#tokens + 1] = w
    end
    tokens = without(tokens, tok)
    if #tokens == 0 then
      redis.call('HDEL', KEYS[2], user)
    else
      redis.call('HSET', KEYS[2], user, table.concat(tokens, ' '))
    end
    local users, field = user_entry(KEYS[3], ub, user)
    local settled, seqs = holds(redis.call('HGET', users, field))
    local rest, found = without(seqs, seq)
    if found then
      set_holds(users, field, settled + 1, rest)
    end
    if idem ~= '' then
      local key = user_entry(KEYS[4], ub, user)
      if redis.call('HGET', key, idem) == answered(tok) then
        redis.call('HSET', key, idem, 's')
      end
    end
    n = n + 1
  end
end
return n
