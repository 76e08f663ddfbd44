-- List live nodes' documents ordered by node id, dropping expired nodes.
-- KEYS[1] live nodes (sorted set, score = expiry in ms of server time)
-- KEYS[2] documents (hash, node id -> JSON)
-- ARGV[1] at most this many
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  for _, id in ipairs(expired) do
    redis.call('HDEL', KEYS[2], id)
  end
end
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
table.sort(ids)
local limit = tonumber(ARGV[1])
local out = {}
for i = 1, math.min(#ids, limit) do
  local doc = redis.call('HGET', KEYS[2], ids[i])
  if doc then
    out[#out + 1] = doc
  end
end
return out
