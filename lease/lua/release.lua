-- Compare and delete: only the exact term may release.
-- KEYS[1] lease key; ARGV[1] "<holder>|<fencing>"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
