-- Put a failed job of a batch back on its queue, drop its failed record and take its failure
-- back from the batch (the links of its chain it had dropped count as pending again).
-- KEYS[1] batch hash   KEYS[2] batch failures zset   KEYS[3..9] the failed store
-- KEYS[10..13] the job's queue: payload hash, pending list, delayed zset, notify list
-- ARGV[1] job id   ARGV[2] payload   ARGV[3] '0' (no delay)   ARGV[4] links
-- ARGV[5] prefix of the per-queue failed index
-- Returns 1. Refuses with nothing changed when a key has the wrong type or a counter of the
-- batch is not a number (lib_check.lua): the record stays failed, and the caller is told.
--! include lib_check.lua
--! include lib_store.lua
--! include lib_failed.lua
local F = failed_keys(3)
expect('hash', KEYS[1])
expect('zset', KEYS[2])
failed_expect(F)
expect_store(KEYS[10], KEYS[11], KEYS[12], KEYS[13])
local record = redis.call('HGET', F.uuids, ARGV[1])
if record then failed_expect_index(F, ARGV[5], record) end
for _, field in ipairs({'failed', 'pending'}) do
  if not is_int(redis.call('HGET', KEYS[1], field)) then
    refuse('batch ' .. KEYS[1] .. ': counter ' .. field .. ' is not a number; nothing was changed')
  end
end
store_jobs(KEYS[10], KEYS[11], KEYS[12], KEYS[13], 1, 1, clock())
if record then failed_remove(F, ARGV[5], record) end
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'failed', -1)
  redis.call('HINCRBY', KEYS[1], 'pending', ARGV[4])
  redis.call('HDEL', KEYS[1], 'finished_at')
end
return 1
