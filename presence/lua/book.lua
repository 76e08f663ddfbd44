-- Record or forget one of this node's entries in its bookkeeping (for Stats).
-- Idempotent, and calls for different entries commute, so concurrent calls
-- need no ordering.
-- KEYS[1] this node's conns set, KEYS[2] its usercounts hash (user → entries)
-- ARGV[1] 'add' or 'del', ARGV[2] the entry, ARGV[3] its user,
-- ARGV[4] entry TTL in ms
if ARGV[1] == 'add' then
  if redis.call('SADD', KEYS[1], ARGV[2]) == 1 then
    redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
elseif redis.call('SREM', KEYS[1], ARGV[2]) == 1 then
  if redis.call('HINCRBY', KEYS[2], ARGV[3], -1) <= 0 then
    redis.call('HDEL', KEYS[2], ARGV[3])
  end
end
return 0
