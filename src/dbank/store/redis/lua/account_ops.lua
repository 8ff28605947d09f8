-- One page of an account's history, read in one consistent step.
--
-- KEYS: 1 the account's history set. ARGV: the key prefix of the branch, the member after
--   which to start ("" for the first), the page size, then the snapshot vector as a count
--   followed by (origin, seq) pairs. Ops the snapshot does not cover are skipped, not
--   counted. The ops lists are read by a name made from the prefix: which origins a page
--   needs is known only once the set is read (all keys share the prefix's hash tag).
-- Returns (member, stored op) pairs, flat, in (hlc, origin, seq) order; the stored op is
--   nil (a history member without its op) only in a corrupt store.

local prefix, after, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local snapshot = {}
for i = 1, tonumber(ARGV[4]) do
  snapshot[tonumber(ARGV[3 + 2 * i])] = tonumber(ARGV[4 + 2 * i])
end

local found = {}
local start = after == '' and '-' or '(' .. after
local batch = math.max(limit, 64)
while #found < 2 * limit do
  local members = redis.call('ZRANGE', KEYS[1], start, '+', 'BYLEX', 'LIMIT', 0, batch)
  for _, member in ipairs(members) do
    -- Members are "HLC:ORIGIN:SEQ", each 20 digits wide.
    local origin = tonumber(string.sub(member, 22, 41))
    local seq = tonumber(string.sub(member, 43, 62))
    if seq <= (snapshot[origin] or 0) then
      table.insert(found, member)
      table.insert(found, redis.call('LINDEX', prefix .. 'ops:' .. origin, seq - 1))
      if #found == 2 * limit then
        return found
      end
    end
    start = '(' .. member
  end
  if #members < batch then
    break
  end
end
return found
