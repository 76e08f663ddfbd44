-- Store a node's document, live for a TTL.
-- KEYS[1] live nodes (sorted set, score = expiry in ms of server time)
-- KEYS[2] documents (hash, node id -> JSON)
-- ARGV[1] node id, ARGV[2] document, ARGV[3] ttl in ms
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
