-- Write a failed record, replacing an earlier one with the same uuid.
-- KEYS[1..7] the failed store (see lib_failed.lua)
-- ARGV[1] uuid   ARGV[2] queue   ARGV[3] packed record   ARGV[4] failed_at
-- ARGV[5] prefix of the per-queue failed index
-- Returns the record's id. Refuses with nothing changed when a key has the wrong type
-- (lib_check.lua, lib_failed.lua).
--! include lib_check.lua
--! include lib_failed.lua
local F = failed_keys(1)
local rebuilt = failed_check(F, ARGV[5], ARGV[1], ARGV[2])
return failed_insert(F, ARGV[5], ARGV[1], ARGV[2], ARGV[3], ARGV[4], rebuilt)
