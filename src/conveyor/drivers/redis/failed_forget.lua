-- Delete the failed record with this id or, failing that, this uuid.
-- KEYS[1..7] the failed store (see lib_failed.lua)
-- ARGV[1] id or uuid   ARGV[2] prefix of the per-queue failed index
-- Returns 1 if a record was deleted, else 0.
--! include lib_failed.lua
local F = failed_keys(1)
if failed_remove(F, ARGV[2], ARGV[1]) == 1 then return 1 end
local id = redis.call('HGET', F.uuids, ARGV[1])
if id then return failed_remove(F, ARGV[2], id) end
return 0
