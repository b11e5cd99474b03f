-- Redis Cluster: remove a reserved job and park its failed record in the queue's own slot.
-- The failed store lives in another slot, where no script on this slot may write; the driver
-- moves the record there right after (failed_record.lua is idempotent per uuid), and any
-- worker reserving from this queue finishes the move if this one died in between.
-- KEYS[1] reserved zset   KEYS[2] token hash   KEYS[3] payload hash   KEYS[4] attempts hash
-- KEYS[5] failed-handoff hash (uuid -> packed record)
-- ARGV[1] job id   ARGV[2] token   ARGV[3] record uuid   ARGV[4] packed record
-- Returns 1, or 0 (nothing written) when the token no longer holds the job.
local id = ARGV[1]
if redis.call('HGET', KEYS[2], id) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], id)
redis.call('HDEL', KEYS[2], id)
redis.call('HDEL', KEYS[3], id)
redis.call('HDEL', KEYS[4], id)
redis.call('HSET', KEYS[5], ARGV[3], ARGV[4])
return 1
