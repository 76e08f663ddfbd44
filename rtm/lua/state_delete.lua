-- Forget a profile's state and figures, keeping the counts by state in
-- step; with the session keys, forget its session too, take a new session
-- version and signal.
-- KEYS[1] state hash, KEYS[2] figures hash, KEYS[3] counts hash, KEYS[4]
-- ids sorted set, KEYS[5] (optional) profiles hash, KEYS[6] (with KEYS[5])
-- version counter; all share one hash tag.
-- ARGV[1] profile id, ARGV[2] (with KEYS[5]) changes channel
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if old and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HINCRBY', KEYS[3], old, -1)
  redis.call('ZREM', KEYS[4], ARGV[1])
end
if KEYS[5] then
  redis.call('HDEL', KEYS[5], ARGV[1])
  redis.call('INCR', KEYS[6])
  redis.call('PUBLISH', ARGV[2], ARGV[1])
end
return 1
