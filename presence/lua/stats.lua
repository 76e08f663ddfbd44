-- Cluster-wide figures over the live nodes' bookkeeping.
-- KEYS[1..n] conns sets, KEYS[n+1..2n] usercounts hashes, KEYS[2n+1..3n]
-- chats sets, KEYS[3n+1] a scratch key, KEYS[3n+2] (optional) the cache
-- key; all share the {nodes} hash tag.
-- ARGV[1] n, ARGV[2] (with the cache key) how long the figures are kept, ms
-- Returns "nodes:conns:users:chats". With a cache key, figures another
-- caller cached meanwhile are returned as they are, and fresh ones are
-- cached: the scan below runs at most once per ARGV[2] cluster-wide.
local n = tonumber(ARGV[1])
local scratch = KEYS[3 * n + 1]
local cache = KEYS[3 * n + 2]
if cache then
  local cached = redis.call('GET', cache)
  if cached then
    return cached
  end
end
local conns = 0
for i = 1, n do
  conns = conns + redis.call('SCARD', KEYS[i])
end
local seen, users = {}, 0
for i = n + 1, 2 * n do
  for _, u in ipairs(redis.call('HKEYS', KEYS[i])) do
    if not seen[u] then
      seen[u] = true
      users = users + 1
    end
  end
end
local chats = redis.call('SUNIONSTORE', scratch, unpack(KEYS, 2 * n + 1, 3 * n))
redis.call('DEL', scratch)
local figures = n .. ':' .. conns .. ':' .. users .. ':' .. chats
if cache then
  redis.call('SET', cache, figures, 'PX', ARGV[2])
end
return figures
