-- Bring a branch's keys to a newer schema: store what the older one did not keep, which
-- Python derived from the stored values (Lua numbers are doubles: no arithmetic on money
-- here), and the new schema version, together. Keys that another process has upgraded
-- meanwhile are left alone.
--
-- KEYS: 1 meta, then the keys to rewrite. ARGV: 1 the schema to upgrade from, 2 the schema
--   to upgrade to, then per key after meta: its kind ("h" a hash, "l" a list), a count,
--   and that many (field or list index, new value) pairs.
-- Returns the schema the keys are in.

local schema = redis.call('HGET', KEYS[1], 'schema')
if schema ~= ARGV[1] then
  return schema
end
local argi = 3
for keyi = 2, #KEYS do
  local kind, count = ARGV[argi], tonumber(ARGV[argi + 1])
  argi = argi + 2
  for _ = 1, count do
    if kind == 'h' then
      redis.call('HSET', KEYS[keyi], ARGV[argi], ARGV[argi + 1])
    else
      redis.call('LSET', KEYS[keyi], tonumber(ARGV[argi]), ARGV[argi + 1])
    end
    argi = argi + 2
  end
end
redis.call('HSET', KEYS[1], 'schema', ARGV[2])
return ARGV[2]
