-- Compare and extend: only the exact term may renew.
-- KEYS[1] lease key; ARGV[1] "<holder>|<fencing>", ARGV[2] ttl in ms
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
