-- Put a reserved job back, now or after a delay, optionally with a new payload.
-- KEYS[1] reserved zset   KEYS[2] token hash   KEYS[3] claims hash   KEYS[4] pending list
-- KEYS[5] payload hash    KEYS[6] delayed zset  KEYS[7] notify list
-- ARGV[1] job id   ARGV[2] token   ARGV[3] delay seconds   ARGV[4] new payload (absent: keep)
-- Returns 1, or 0 (nothing written) when the token no longer holds the job (lib_settle.lua:
-- a job swept back to pending but not claimed again is still held). Refuses with nothing
-- changed when a key has the wrong type (lib_check.lua).
--! include lib_check.lua
--! include lib_settle.lua
--! include lib_store.lua
expect_settle(KEYS[1], KEYS[2], KEYS[3], KEYS[4])
expect_store(KEYS[5], KEYS[4], KEYS[6], KEYS[7])
local id = ARGV[1]
if not unreserve(KEYS[1], KEYS[2], KEYS[3], KEYS[4], id, ARGV[2]) then return 0 end
if ARGV[4] then redis.call('HSET', KEYS[5], id, ARGV[4]) end
local delay = tonumber(ARGV[3])
if delay > 0 then
  redis.call('ZADD', KEYS[6], clock() + delay, id)
else
  redis.call('RPUSH', KEYS[4], id)
end
wake(KEYS[7], 1)
return 1
