-- Put a reserved job back, now or after a delay, optionally with a new payload.
-- KEYS[1] reserved zset   KEYS[2] token hash   KEYS[3] payload hash   KEYS[4] pending list
-- KEYS[5] delayed zset    KEYS[6] notify list
-- ARGV[1] job id   ARGV[2] token   ARGV[3] delay seconds   ARGV[4] new payload (absent: keep)
-- Returns 1, or 0 (nothing written) when the token no longer holds the job.
--! include lib_store.lua
local id = ARGV[1]
if redis.call('HGET', KEYS[2], id) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], id)
redis.call('HDEL', KEYS[2], id)
if ARGV[4] then redis.call('HSET', KEYS[3], id, ARGV[4]) end
local delay = tonumber(ARGV[3])
if delay > 0 then
  redis.call('ZADD', KEYS[5], clock() + delay, id)
else
  redis.call('RPUSH', KEYS[4], id)
end
wake(KEYS[6], 1)
return 1
