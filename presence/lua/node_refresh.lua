-- Renew this node's liveness and the TTL of its bookkeeping sets.
-- KEYS[1] live nodes (sorted set, score = expiry in ms of server time)
-- KEYS[2] this node's alive key, KEYS[3..5] its conns set, usercounts hash
-- and chats set
-- ARGV[1] node ID, ARGV[2] entry TTL in ms
-- Returns 1 if the alive key still existed, 0 if this node had been
-- forgotten (first start, a stall longer than the TTL, or Redis lost data):
-- the caller then rewrites its state.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local existed = redis.call('EXISTS', KEYS[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
for i = 3, 5 do
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
return existed
