-- Remove a reserved job and write its failed record, in one step (single Redis server).
-- KEYS[1] reserved zset   KEYS[2] token hash   KEYS[3] claims hash   KEYS[4] payload hash
-- KEYS[5] attempts hash   KEYS[6..12] the failed store (see lib_failed.lua)
-- ARGV[1] job id   ARGV[2] token   ARGV[3] record uuid   ARGV[4] record queue
-- ARGV[5] packed record   ARGV[6] failed_at   ARGV[7] prefix of the per-queue failed index
-- Returns the failed record's id, or 0 (nothing written) when the token no longer holds the job.
--! include lib_settle.lua
--! include lib_failed.lua
local id = ARGV[1]
if not unreserve(KEYS[1], KEYS[2], KEYS[3], id, ARGV[2]) then return 0 end
redis.call('HDEL', KEYS[4], id)
redis.call('HDEL', KEYS[5], id)
return failed_insert(failed_keys(6), ARGV[7], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
