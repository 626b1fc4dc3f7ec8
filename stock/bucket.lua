-- bucket.lua: the per-user entries of an activity (the users hash and the
-- idempotency hash) are spread over buckets, small hashes that Redis keeps
-- as listpacks: about 15 bytes an entry, where one big hash table costs
-- about 80. The number of buckets, meta "ub", is fixed when the state is
-- made (stock.UserBuckets: 64 entries a bucket on average at most, under
-- Redis's default hash-max-listpack-entries of 128); a bucket that grows
-- past that only costs more memory.
--
-- user_key(prefix, ub, userId): the key of userId's bucket, prefix followed
-- by the first 32 bits of the SHA-1 of userId modulo ub.
local function user_key(prefix, ub, user)
  return prefix .. (tonumber(string.sub(redis.sha1hex(user), 1, 8), 16) % ub)
end

-- A user's entry in the users hash is "N" or "N s1 s2 ...": N the user's
-- tokens whose records are settled valid in MySQL or that are of an earlier
-- epoch (a rebuild replays them), s the sequence numbers of the user's
-- claims of this epoch still in flight or confirmed but not settled yet.
-- holds(v) reads it: N and the list of sequence numbers (as strings).
local function holds(v)
  local settled, seqs = nil, {}
  for w in string.gmatch(v or '', '%S+') do
    if settled then
      seqs[#seqs + 1] = w
    else
      settled = tonumber(w)
    end
  end
  return settled or 0, seqs
end

-- set_holds(key, user, settled, seqs) writes an entry back, or deletes it
-- when the user holds nothing.
local function set_holds(key, user, settled, seqs)
  if settled == 0 and #seqs == 0 then
    redis.call('HDEL', key, user)
  elseif #seqs == 0 then
    redis.call('HSET', key, user, settled)
  else
    redis.call('HSET', key, user, settled .. ' ' .. table.concat(seqs, ' '))
  end
end

-- without(list, w) returns list without its first w, and whether it was
-- there.
local function without(list, w)
  local rest, found = {}, false
  for _, x in ipairs(list) do
    if not found and x == w then
      found = true
    else
      rest[#rest + 1] = x
    end
  end
  return rest, found
end
