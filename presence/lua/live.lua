-- List live nodes, dropping those whose liveness expired; or, when a Stats
-- cache key is given and holds fresh figures, those figures instead.
-- KEYS[1] live nodes (sorted set, score = expiry in ms of server time)
-- KEYS[2] (optional) the Stats cache key (same hash tag)
-- Returns {cached figures "nodes:conns:users:chats" or false, node...}.
if KEYS[2] then
  local cached = redis.call('GET', KEYS[2])
  if cached then
    return {cached}
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local out = {false}
for i, node in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  out[i + 1] = node
end
return out
