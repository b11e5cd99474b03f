-- Put a failed job of a batch back on its queue, drop its failed record and take its failure
-- back from the batch (the links of its chain it had dropped count as pending again).
-- KEYS[1] batch hash   KEYS[2] batch failures zset   KEYS[3..9] the failed store
-- KEYS[10..13] the job's queue: payload hash, pending list, delayed zset, notify list
-- ARGV[1] job id   ARGV[2] payload   ARGV[3] '0' (no delay)   ARGV[4] links
-- ARGV[5] prefix of the per-queue failed index
-- Returns 1.
--! include lib_store.lua
--! include lib_failed.lua
store_jobs(KEYS[10], KEYS[11], KEYS[12], KEYS[13], 1, 1, clock())
local F = failed_keys(3)
local record = redis.call('HGET', F.uuids, ARGV[1])
if record then failed_remove(F, ARGV[5], record) end
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'failed', -1)
  redis.call('HINCRBY', KEYS[1], 'pending', ARGV[4])
  redis.call('HDEL', KEYS[1], 'finished_at')
end
return 1
