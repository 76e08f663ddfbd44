-- Take the lease if free, or return the caller's own term if it already holds it.
-- KEYS[1] lease key   (value "<holder>|<fencing>", PX ttl)
-- KEYS[2] fencing key (INCR counter, no TTL: fencing must never go back)
-- ARGV[1] holder, ARGV[2] ttl in ms
-- Returns {1, fencing} when granted (extending the TTL if it was already the
-- caller's), {0, fencing, holder} when another holder has it.
local v = redis.call('GET', KEYS[1])
if v then
  local sep = string.find(v, '|[^|]*$')
  local holder = string.sub(v, 1, sep - 1)
  local fencing = string.sub(v, sep + 1)
  if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, fencing}
  end
  return {0, fencing, holder}
end
local f = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. f, 'NX', 'PX', ARGV[2])
return {1, tostring(f)}
