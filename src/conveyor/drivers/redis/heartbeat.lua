-- Record a worker's heartbeat and drop workers not seen for a long time.
-- KEYS[1] workers hash (id -> packed info)   KEYS[2] seen zset (score last_seen)
-- ARGV[1] worker id   ARGV[2] packed info   ARGV[3] last_seen   ARGV[4] forget before this time
-- Returns the number of stale workers dropped. Refuses with nothing changed when a key has the
-- wrong type (lib_check.lua).
--! include lib_check.lua
expect('hash', KEYS[1])
expect('zset', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4], 'LIMIT', 0, 100)
if #stale > 0 then
  redis.call('HDEL', KEYS[1], unpack(stale))
  redis.call('ZREM', KEYS[2], unpack(stale))
end
return #stale
