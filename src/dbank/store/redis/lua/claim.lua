-- Mark a branch's keys as that branch's, once; report what they were marked with.
--
-- KEYS: 1 meta. ARGV: 1 branch id, 2 schema version. Returns {branch id, schema version}.

redis.call('HSETNX', KEYS[1], 'branch_id', ARGV[1])
redis.call('HSETNX', KEYS[1], 'schema', ARGV[2])
return redis.call('HMGET', KEYS[1], 'branch_id', 'schema')
