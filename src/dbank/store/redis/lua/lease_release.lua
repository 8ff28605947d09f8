-- Give the replication lease up if the caller still holds it, so another process of the
-- branch can take it at once instead of waiting for it to expire.
--
-- KEYS: 1 lease. ARGV: 1 "HOLDER:TOKEN" as taken. Returns 1 if released, else 0.

if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
