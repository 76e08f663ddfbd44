-- Rewrite the counts by state and the sorted set of ids from the state
-- hash (time linear in the profiles; the leader runs it once a term and
-- then once a minute).
-- KEYS[1] state hash, KEYS[2] counts hash, KEYS[3] ids sorted set (same
-- hash tag)
-- ARGV the known states, counted even when none is in that state.
local counts, order = {}, {}
for _, s in ipairs(ARGV) do
  counts[s] = 0
  order[#order + 1] = s
end
local all = redis.call('HGETALL', KEYS[1])
-- The ids are rewritten only when they are off: their number differs, or
-- one of the state hash's ids is missing (a missed add and a missed remove
-- leave the number right). Rewriting them all each time would replicate
-- them all.
local drift = redis.call('ZCARD', KEYS[3]) ~= #all / 2
if not drift then
  for i = 1, #all, 2 do
    if not redis.call('ZSCORE', KEYS[3], all[i]) then
      drift = true
      break
    end
  end
end
if drift then
  redis.call('DEL', KEYS[3])
  local batch = {}
  for i = 1, #all, 2 do
    batch[#batch + 1] = 0
    batch[#batch + 1] = all[i]
    if #batch >= 1000 then
      redis.call('ZADD', KEYS[3], unpack(batch))
      batch = {}
    end
  end
  if #batch > 0 then
    redis.call('ZADD', KEYS[3], unpack(batch))
  end
end
for i = 2, #all, 2 do
  local s = all[i]
  if not counts[s] then
    counts[s] = 0
    order[#order + 1] = s
  end
  counts[s] = counts[s] + 1
end
local fields = {}
for _, s in ipairs(order) do
  fields[#fields + 1] = s
  fields[#fields + 1] = counts[s]
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], unpack(fields))
return 1
