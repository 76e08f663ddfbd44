-- Record a profile's state, keeping the counts by state in step.
-- KEYS[1] state hash, KEYS[2] counts hash, KEYS[3] ids sorted set (same
-- hash tag)
-- ARGV[1] profile id, ARGV[2] state
-- The counts and ids are kept only once a recount (recount.lua) has made
-- them: before that they would miss the states written without them.
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if old ~= ARGV[2] and redis.call('EXISTS', KEYS[2]) == 1 then
  if old then
    redis.call('HINCRBY', KEYS[2], old, -1)
  else
    redis.call('ZADD', KEYS[3], 0, ARGV[1])
  end
  redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
end
return 1
