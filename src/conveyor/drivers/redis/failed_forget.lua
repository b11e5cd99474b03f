-- Delete the failed record with this id or, failing that, this uuid.
-- KEYS[1..7] the failed store (see lib_failed.lua)
-- ARGV[1] id or uuid   ARGV[2] prefix of the per-queue failed index
-- Returns 1 if a record was deleted, else 0. Refuses with nothing deleted when a key has the
-- wrong type (lib_check.lua).
--! include lib_check.lua
--! include lib_failed.lua
local F = failed_keys(1)
failed_expect(F)
local id = ARGV[1]
if not redis.call('HGET', F.queue_of, id) then id = redis.call('HGET', F.uuids, ARGV[1]) end
if not id then return 0 end
failed_expect_index(F, ARGV[2], id)
return failed_remove(F, ARGV[2], id)
