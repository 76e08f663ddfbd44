-- The rolling-window rule, shared by limits/lua/window.lua and the scripts
-- of other engines that fold a limit into their own work (bus/lua/append.lua,
-- bus/lua/publish.lua): Go prepends this file to them (limits.WindowRuleLua).
--
-- window_allow(key, now, cutoff, window, n, member): accept if fewer than n
-- events were accepted in (cutoff, now], and record this one (score now, µs
-- of the caller's clock; member unique per event). Rejected calls are not
-- recorded. Returns the count before this event when accepted, or -retry
-- (µs until the (count-n)th oldest event leaves the window, at least 1) when
-- not.
-- key: sorted set of accepted events; the other arguments are strings or
-- numbers as passed in ARGV.
local function window_allow(key, now, cutoff, window, n, member)
  n = tonumber(n)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', cutoff)
  local count = redis.call('ZCARD', key)
  if count >= n then
    local first = redis.call('ZRANGE', key, count - n, count - n, 'WITHSCORES')
    local retry = tonumber(first[2]) + tonumber(window) - tonumber(now)
    if retry < 1 then retry = 1 end
    return -retry
  end
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, math.ceil(tonumber(window) / 1000))
  return count
end
