-- bucket.lua: the per-user entries of an activity (the users hash and the
-- idempotency hash) are spread over buckets, small hashes that Redis keeps
-- as listpacks: about 15 bytes an entry, where one big hash table costs
-- about 80. The number of buckets, meta "ub", is fixed when the state is
-- made (stock.UserBuckets: 64 entries a bucket on average at most, under
-- Redis's default hash-max-listpack-entries of 128); a bucket that grows
-- past that only costs more memory.
--
-- A listpack holds entries of up to 64 bytes (hash-max-listpack-value), so
-- no field is longer: a userId (up to 64 characters) of 32 or more stands as
-- the first 32 hex digits of its SHA-1, which no userId it is not can equal
-- (shorter ones stand as themselves); an idempotency field is that, ":", and
-- the key the same way with 24 digits (stock.go, idemField).
--
-- user_entry(prefix, ub, userId) returns the key of userId's bucket, prefix
-- followed by the first 32 bits of the SHA-1 of userId modulo ub, the
-- field that stands for userId in it, and the bucket's number (the same in
-- every bucketed hash of the state).
local function user_entry(prefix, ub, user)
  local h = redis.sha1hex(user)
  local field = user
  if #user >= 32 then
    field = string.sub(h, 1, 32)
  end
  local bucket = tonumber(string.sub(h, 1, 8), 16) % ub
  return prefix .. bucket, field, bucket
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
