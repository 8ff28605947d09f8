-- One commit of a branch (design §7): ops, state, outcomes and version vector.
--
-- Redis does not roll a failed script back, so every check comes before the first write:
-- a refused commit changes nothing. Amounts and HLCs are never numbers here (Lua numbers
-- are doubles; amounts reach 2^63 - 1): Python computes every new value, and the script
-- checks that the state it was computed from is still the stored one.
--
-- Every stored value and every value in ARGV below except seqs and the base vector is
-- "DIGEST PAYLOAD" (store/redis/_rows.py): the digest is 32 hex digits, so a payload
-- starts at character 34. Python makes and checks digests; the script only strips them.
--
-- KEYS: 1 meta, 2 accounts, 3 rights, 4 applied, 5 outcomes, 6 fence, 7 postings,
--   8 credits, then per op its ops list followed by the history set of each account whose
--   history holds it.
-- ARGV: fencing token ("" when this process holds no lease), largest HLC of the ops, the
--   branch's commit channel and this process's name (published there when the commit
--   holds ops, for the other processes serving the branch), then sections, each a count
--   followed by its items:
--   base vector (origin, seq): the vector the commit was computed from; must equal applied
--   ops (seq, data, number of accounts, history member)
--   new accounts (id, data); rights (field, amount); net credits (field, amount);
--   applied (origin, seq); interest postings (account id, data)
--   outcomes (field, data): must not exist yet; learned (field, data): kept if one exists

local argi = 1
local function arg()
  local value = ARGV[argi]
  argi = argi + 1
  return value
end
local keyi = 9
local function next_key()
  local key = KEYS[keyi]
  keyi = keyi + 1
  return key
end
local function refuse(why)
  return redis.error_reply('DBANK_CONFLICT ' .. why)
end

local token = arg()
local last_hlc = arg()
local channel = arg()
local committer = arg()

-- Checks -------------------------------------------------------------------------------

if token ~= '' and redis.call('GET', KEYS[6]) ~= token then
  return redis.error_reply('DBANK_FENCED the replication lease has passed to another process')
end

local stored = redis.call('HGETALL', KEYS[4])
local stored_count = #stored / 2
local base_count = tonumber(arg())
if base_count ~= stored_count then
  return refuse('the version vector changed')
end
local function payload(value)
  return string.sub(value, 34)
end
local vector = {}
for i = 1, #stored, 2 do
  vector[stored[i]] = payload(stored[i + 1])
end
for _ = 1, base_count do
  local origin, seq = arg(), arg()
  if vector[origin] ~= seq then
    return refuse('the version vector changed')
  end
end

local ops = {}
local lengths = {}
for _ = 1, tonumber(arg()) do
  local list = next_key()
  local op = {list = list, seq = tonumber(arg()), data = arg(), history = {}}
  local accounts = tonumber(arg())
  op.member = arg()
  for _ = 1, accounts do
    table.insert(op.history, next_key())
  end
  local length = lengths[list] or redis.call('LLEN', list)
  if length ~= op.seq - 1 then
    return refuse('op ' .. list .. ' seq ' .. op.seq .. ' is not next (stored: ' .. length .. ')')
  end
  lengths[list] = op.seq
  table.insert(ops, op)
end

local function pairs_section()
  local items = {}
  for _ = 1, tonumber(arg()) do
    table.insert(items, {arg(), arg()})
  end
  return items
end
local accounts = pairs_section()
local rights = pairs_section()
local credits = pairs_section()
local applied = pairs_section()
local postings = pairs_section()
local outcomes = pairs_section()
local learned = pairs_section()

for _, item in ipairs(accounts) do
  if redis.call('HEXISTS', KEYS[2], item[1]) == 1 then
    return refuse('account ' .. item[1] .. ' exists')
  end
end
for _, item in ipairs(rights) do
  if not string.match(payload(item[2]), '^%d+$') then
    return redis.error_reply('DBANK_INVALID share ' .. item[1] .. ' = ' .. item[2])
  end
end
for _, item in ipairs(credits) do
  if not string.match(payload(item[2]), '^%-?%d+$') then
    return redis.error_reply('DBANK_INVALID net credit ' .. item[1] .. ' = ' .. item[2])
  end
end
for _, item in ipairs(outcomes) do
  if redis.call('HEXISTS', KEYS[5], item[1]) == 1 then
    return refuse('a request outcome is stored already')
  end
end

-- Writes -------------------------------------------------------------------------------

for _, op in ipairs(ops) do
  redis.call('RPUSH', op.list, op.data)
  for _, history in ipairs(op.history) do
    redis.call('ZADD', history, 0, op.member)
  end
end
for _, item in ipairs(accounts) do
  redis.call('HSET', KEYS[2], item[1], item[2])
end
for _, item in ipairs(rights) do
  redis.call('HSET', KEYS[3], item[1], item[2])
end
for _, item in ipairs(credits) do
  redis.call('HSET', KEYS[8], item[1], item[2])
end
for _, item in ipairs(applied) do
  redis.call('HSET', KEYS[4], item[1], item[2])
end
for _, item in ipairs(postings) do
  redis.call('HSET', KEYS[7], item[1], item[2])
end
for _, item in ipairs(outcomes) do
  redis.call('HSET', KEYS[5], item[1], item[2])
end
for _, item in ipairs(learned) do
  redis.call('HSETNX', KEYS[5], item[1], item[2])
end
if #ops > 0 then
  -- Decimal strings without leading zeros compare by length, then text.
  local old = redis.call('HGET', KEYS[1], 'last_hlc') or '0'
  if #last_hlc > #old or (#last_hlc == #old and last_hlc > old) then
    redis.call('HSET', KEYS[1], 'last_hlc', last_hlc)
  end
  redis.call('PUBLISH', channel, committer)
end
return 'OK'
