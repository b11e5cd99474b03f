-- Remove a reserved job and write its failed record, in one step (single Redis server).
-- KEYS[1] reserved zset   KEYS[2] token hash   KEYS[3] claims hash   KEYS[4] pending list
-- KEYS[5] payload hash    KEYS[6] attempts hash   KEYS[7..13] the failed store (lib_failed.lua)
-- ARGV[1] job id   ARGV[2] token   ARGV[3] record uuid   ARGV[4] record queue
-- ARGV[5] packed record   ARGV[6] failed_at   ARGV[7] prefix of the per-queue failed index
-- Returns the failed record's id, or 0 (nothing written) when the token no longer holds the job
-- (lib_settle.lua: a job swept back to pending but not claimed again is still held). Refuses
-- with nothing changed when a key has the wrong type (lib_check.lua, lib_failed.lua).
--! include lib_check.lua
--! include lib_settle.lua
--! include lib_failed.lua
local F = failed_keys(7)
expect_settle(KEYS[1], KEYS[2], KEYS[3], KEYS[4])
expect('hash', KEYS[5], KEYS[6])
local rebuilt = failed_check(F, ARGV[7], ARGV[3], ARGV[4])
local id = ARGV[1]
if not unreserve(KEYS[1], KEYS[2], KEYS[3], KEYS[4], id, ARGV[2]) then return 0 end
redis.call('HDEL', KEYS[5], id)
redis.call('HDEL', KEYS[6], id)
return failed_insert(F, ARGV[7], ARGV[3], ARGV[4], ARGV[5], ARGV[6], rebuilt)
