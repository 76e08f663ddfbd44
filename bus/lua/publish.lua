-- An ephemeral event (typing) with its rate limit folded in
-- (bus.Redis.PublishLimited, one Redis only): the limiter's rule
-- (window_allow, limits/lua/window_rule.lua) is prepended by Go.
--
-- KEYS[1] the limiter's sorted set, KEYS[2] the channel
-- ARGV[1..5] now, cutoff, window (µs), N and the event's member, as for
-- limits/lua/window.lua; ARGV[6] the publish command (PUBLISH); ARGV[7] the
-- envelope, as bus.Redis.Publish sends it.
-- Returns {"ok"}, or {"limited", retry after (µs)} with nothing published.
local c = window_allow(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
if c < 0 then return {'limited', string.format('%.0f', -c)} end
redis.call(ARGV[6], KEYS[2], ARGV[7])
return {'ok'}
