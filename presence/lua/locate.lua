-- List a user's live connection entries ("<node>|<conn>"), oldest expiry first.
-- KEYS[1] the user's entries (sorted set, score = expiry in ms of server time)
-- ARGV[1] at most this many
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'LIMIT', 0, tonumber(ARGV[1]))
