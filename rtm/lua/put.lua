-- Store or replace a profile's session with a new version, and signal.
-- KEYS[1] profiles hash, KEYS[2] version counter (same hash tag)
-- ARGV[1] profile id, ARGV[2] session (compact JSON), ARGV[3] changes channel
local v = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], '{"version":' .. v .. ',"session":' .. ARGV[2] .. '}')
redis.call('PUBLISH', ARGV[3], ARGV[1])
return v
