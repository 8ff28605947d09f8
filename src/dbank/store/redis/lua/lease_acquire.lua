-- Take the replication lease of a branch, or keep it if this holder has it already.
--
-- KEYS: 1 lease, 2 fence. ARGV: 1 holder id, 2 time to live in milliseconds.
-- Returns the holder's fencing token, or 0 if another holder has the lease. A new holder
-- gets a new token, larger than every earlier one: commits check it against the fence, so
-- a holder that lost its lease (a long pause, a cut) cannot apply anything after that.

local held = redis.call('GET', KEYS[1])
if held then
  local holder, token = string.match(held, '^(.*):(%d+)$')
  if holder ~= ARGV[1] then
    return 0
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(token)
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'NX', 'PX', ARGV[2])
return token
