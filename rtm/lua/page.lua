-- One page of the reported states in id order, with the figures.
-- KEYS[1] state hash, KEYS[2] figures hash, KEYS[3] counts hash, KEYS[4]
-- ids sorted set (same hash tag)
-- ARGV[1] the id to start after ("" from the first), ARGV[2] page size
-- Returns false when the ids are not kept yet (no recount since: the
-- caller reads the hashes whole), else {more (0 or 1), ids, states,
-- figures}: the states and figures of the ids, false where none.
if redis.call('EXISTS', KEYS[3]) == 0 then
  return false
end
local limit = tonumber(ARGV[2])
local from = '-'
if ARGV[1] ~= '' then
  from = '(' .. ARGV[1]
end
local ids = redis.call('ZRANGEBYLEX', KEYS[4], from, '+', 'LIMIT', 0, limit + 1)
local more = 0
if #ids > limit then
  more = 1
  ids[#ids] = nil
end
if #ids == 0 then
  return {more, {}, {}, {}}
end
return {more, ids, redis.call('HMGET', KEYS[1], unpack(ids)), redis.call('HMGET', KEYS[2], unpack(ids))}
