-- Push the expiry of this node's entries of one user to now + TTL.
-- KEYS[1] the user's sorted set of entries
-- ARGV[1] entry TTL in ms
-- ARGV[2] 'XX': only entries still present (a released entry stays released);
--         'ADD': also re-create missing ones (restoring after Redis lost them)
-- ARGV[3..] members "<nodeID>|<connID>"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local expiry = now + ttl
for i = 3, #ARGV do
  if ARGV[2] == 'XX' then
    redis.call('ZADD', KEYS[1], 'XX', expiry, ARGV[i])
  else
    redis.call('ZADD', KEYS[1], expiry, ARGV[i])
  end
end
local pttl = redis.call('PTTL', KEYS[1])
if pttl ~= -2 and pttl < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 0
