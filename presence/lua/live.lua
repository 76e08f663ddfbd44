-- List live nodes, dropping those whose liveness expired.
-- KEYS[1] live nodes (sorted set, score = expiry in ms of server time)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
