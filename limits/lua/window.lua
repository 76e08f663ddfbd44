-- Rolling-window cap: accept if fewer than N events were accepted in
-- (now - window, now]. Rejected calls are not recorded.
-- KEYS[1] sorted set of accepted events (score: time in microseconds)
-- ARGV[1] now (µs), ARGV[2] cutoff = now - window (µs), ARGV[3] window (µs),
-- ARGV[4] N, ARGV[5] unique member for this event
-- Returns {1, remaining, 0} when accepted, {0, 0, retry_after_us} when not.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local n = tonumber(ARGV[4])
local count = redis.call('ZCARD', KEYS[1])
if count < n then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[5])
  redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3]) / 1000))
  return {1, n - count - 1, 0}
end
-- The (count-n)th oldest event (0-based) must leave before one more fits.
local first = redis.call('ZRANGE', KEYS[1], count - n, count - n, 'WITHSCORES')
local retry = tonumber(first[2]) + tonumber(ARGV[3]) - tonumber(ARGV[1])
if retry < 1 then
  retry = 1
end
return {0, 0, retry}
