-- Write a failed record, replacing an earlier one with the same uuid.
-- KEYS[1..7] the failed store (see lib_failed.lua)
-- ARGV[1] uuid   ARGV[2] queue   ARGV[3] packed record   ARGV[4] failed_at
-- ARGV[5] prefix of the per-queue failed index
-- Returns the record's id.
--! include lib_failed.lua
return failed_insert(failed_keys(1), ARGV[5], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
