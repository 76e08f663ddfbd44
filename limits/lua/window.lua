-- Rolling-window cap (window_allow, limits/lua/window_rule.lua, is prepended).
-- KEYS[1] sorted set of accepted events (score: time in microseconds)
-- ARGV[1] now (µs), ARGV[2] cutoff = now - window (µs), ARGV[3] window (µs),
-- ARGV[4] N, ARGV[5] unique member for this event
-- Returns {1, remaining, 0} when accepted, {0, 0, retry_after_us} when not.
local c = window_allow(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
if c < 0 then
  return {0, 0, -c}
end
return {1, tonumber(ARGV[4]) - c - 1, 0}
