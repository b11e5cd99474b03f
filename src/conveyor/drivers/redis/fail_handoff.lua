-- Redis Cluster: remove a reserved job and park its failed record in the queue's own slot.
-- The failed store lives in another slot, where no script on this slot may write; the driver
-- moves the record there right after (failed_record.lua is idempotent per uuid), and any
-- worker reserving from this queue finishes the move if this one died in between.
-- KEYS[1] reserved zset   KEYS[2] token hash   KEYS[3] claims hash   KEYS[4] pending list
-- KEYS[5] payload hash    KEYS[6] attempts hash   KEYS[7] failed-handoff hash (uuid -> record)
-- ARGV[1] job id   ARGV[2] token   ARGV[3] record uuid   ARGV[4] packed record
-- Returns 1, or 0 (nothing written) when the token no longer holds the job (lib_settle.lua:
-- a job swept back to pending but not claimed again is still held). Refuses with nothing
-- changed when a key has the wrong type (lib_check.lua).
--! include lib_check.lua
--! include lib_settle.lua
expect_settle(KEYS[1], KEYS[2], KEYS[3], KEYS[4])
expect('hash', KEYS[5], KEYS[6], KEYS[7])
local id = ARGV[1]
if not unreserve(KEYS[1], KEYS[2], KEYS[3], KEYS[4], id, ARGV[2]) then return 0 end
redis.call('HDEL', KEYS[5], id)
redis.call('HDEL', KEYS[6], id)
redis.call('HSET', KEYS[7], ARGV[3], ARGV[4])
return 1
