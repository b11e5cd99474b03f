-- The newest failed records first, optionally of one queue and below an id.
-- KEYS[1] index zset (all ids, or one queue's)   KEYS[2] records hash
-- ARGV[1] exclusive upper id ('+inf': none)   ARGV[2] limit
-- Returns a flat list: id, packed record, id, packed record, ...
local top = ARGV[1] == '+inf' and '+inf' or '(' .. ARGV[1]
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], top, '-inf', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  local packed = redis.call('HGET', KEYS[2], id)
  if packed then
    out[#out + 1] = id
    out[#out + 1] = packed
  end
end
return out
