-- Bring a branch's keys to a newer schema: store what the older one did not keep, which
-- Python derived from the branch's ops (Lua numbers are doubles: no arithmetic on money
-- here), and the new schema version, together. Keys that another process has upgraded
-- meanwhile are left alone.
--
-- KEYS: 1 meta, 2 credits. ARGV: 1 the schema to upgrade from, 2 the schema to upgrade
--   to, then the net credits as (field, amount) pairs.
-- Returns the schema the keys are in.

local schema = redis.call('HGET', KEYS[1], 'schema')
if schema ~= ARGV[1] then
  return schema
end
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[1], 'schema', ARGV[2])
return ARGV[2]
