-- Take one of a user's connection slots, atomically against the cap.
-- KEYS[1] the user's sorted set of entries: member "<nodeID>|<connID>",
--         score = expiry in ms of Redis server time
-- ARGV[1] member, ARGV[2] max, ARGV[3] entry TTL in ms
-- Returns 1 when the entry is recorded (or already was: its expiry is
-- extended), 0 when the user is at the cap.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
-- Entries of nodes that stopped refreshing (crashed) no longer count.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
-- Extend, never shorten, the key's TTL (nodes may use different entry TTLs).
local pttl = redis.call('PTTL', KEYS[1])
if pttl < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
