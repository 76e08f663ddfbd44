-- Performs one chat operation and publishes its event, atomically (bus.Redis.Append).
--
-- KEYS[1] stream  <prefix>:{chat:<id>}:h
-- KEYS[2] meta    <prefix>:{chat:<id>}:m:<msgid>, the deleted flag x, written by
--                 delete only (for send: the prefix <...>:m:, unused). A message's
--                 author is field a of its new_message entry in the stream; messages
--                 stored before that have it in this hash (field a, with its own TTL).
-- KEYS[3] reacts  <prefix>:{chat:<id>}:r:<msgid>  (not for send)
-- KEYS[#KEYS]     the chat's pub/sub channel (declared so that SPUBLISH, whose
--                 channel is slot-bound on Redis Cluster, passes the slot check)
-- ARGV: mode (s send, e edit, d delete, a react add, r react remove), maxlen,
--       ttl (ms), publish command (PUBLISH, or SPUBLISH on Redis Cluster),
--       event, data, sep, user, msgid, emoji.
--       For send, data is the payload after its opening brace and sep is "," or
--       "" (empty object), so the messageId field can be spliced in front.
-- With a rate limit folded in (bus.Redis.AppendLimited, one Redis only), checked
-- before anything else: KEYS[#KEYS-1] (before the channel) is the limiter's
-- sorted set and ARGV[11..15] are now, cutoff, window
-- (µs), N and the event's member, as for limits/lua/window.lua (whose rule,
-- window_allow, Go prepends to this script); nothing is appended when N
-- events were accepted within the window.
-- Returns {"ok", eventId}, {"same"} (reaction unchanged), {"notfound"},
-- {"forbidden"} or {"limited", retry after (µs)}.
-- Publishes (ARGV[4]) "<eventId>\n<previous eventId or empty>\n<event>\n<data>" on channel.

local stream, mode = KEYS[1], ARGV[1]
local maxlen, ttl = ARGV[2], ARGV[3]
local publish, event, data = ARGV[4], ARGV[5], ARGV[6]
local user = ARGV[8]

if ARGV[15] then
  -- The limiter's rule (window_allow, limits/lua/window_rule.lua, is prepended).
  local c = window_allow(KEYS[#KEYS - 1], ARGV[11], ARGV[12], ARGV[13], ARGV[14], ARGV[15])
  if c < 0 then return {'limited', string.format('%.0f', -c)} end
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

if mode ~= 's' then
  local msgid = ARGV[9]
  -- Its new_message event must still be in the stream (not trimmed away),
  -- sent less than ttl ago, and not deleted.
  local entry = redis.call('XRANGE', stream, msgid, msgid)[1]
  if not entry then return {'notfound'} end
  local left = tonumber(ttl) - (now - tonumber(string.match(msgid, '^(%d+)-')))
  if left <= 0 then return {'notfound'} end
  local author
  local f = entry[2]
  for i = 1, #f, 2 do
    if f[i] == 'a' then author = f[i + 1] end
  end
  local meta = redis.call('HMGET', KEYS[2], 'a', 'x')
  author = author or meta[1]
  if not author or meta[2] then return {'notfound'} end
  if mode == 'e' or mode == 'd' then
    if author ~= user then return {'forbidden'} end
    if mode == 'd' then
      redis.call('HSET', KEYS[2], 'x', '1')
      redis.call('PEXPIRE', KEYS[2], left)
    end
  else
    local member = user .. '\n' .. ARGV[10]
    if mode == 'a' then
      if redis.call('SADD', KEYS[3], member) == 0 then return {'same'} end
      -- reactions expire with their message
      redis.call('PEXPIRE', KEYS[3], left)
    else
      if redis.call('SREM', KEYS[3], member) == 0 then return {'same'} end
    end
  end
end

-- The new id follows the rule of XADD *: now-0, or the previous id's
-- millisecond with the next sequence when the clock has not moved past it.
-- It is computed here because send needs it inside the payload.
local prev, pms, pseq = '', -1, -1
local top = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
if top[1] then
  prev = top[1][1]
  local a, b = string.match(prev, '^(%d+)-(%d+)$')
  pms, pseq = tonumber(a), tonumber(b)
end
local ms, seq = now, 0
if ms <= pms then ms, seq = pms, pseq + 1 end
local id = string.format('%.0f-%.0f', ms, seq)

if mode == 's' then
  data = '{"messageId":"' .. id .. '"' .. ARGV[7] .. data
  redis.call('XADD', stream, 'MAXLEN', maxlen, id, 'e', event, 'd', data, 'a', user)
else
  redis.call('XADD', stream, 'MAXLEN', maxlen, id, 'e', event, 'd', data)
end
redis.call('PEXPIRE', stream, ttl)
redis.call(publish, KEYS[#KEYS], id .. '\n' .. prev .. '\n' .. event .. '\n' .. data)
return {'ok', id}
