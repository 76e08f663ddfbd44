-- Rewrite the counts by state from the state hash (time linear in the
-- profiles; the leader runs it once a term and then once a minute).
-- KEYS[1] state hash, KEYS[2] counts hash (same hash tag)
-- ARGV the known states, counted even when none is in that state.
local counts, order = {}, {}
for _, s in ipairs(ARGV) do
  counts[s] = 0
  order[#order + 1] = s
end
for _, s in ipairs(redis.call('HVALS', KEYS[1])) do
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
