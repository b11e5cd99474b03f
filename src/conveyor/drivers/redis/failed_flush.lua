-- Delete up to `limit` failed records that failed before a time (the caller repeats until done).
-- KEYS[1..7] the failed store (see lib_failed.lua)
-- ARGV[1] failed_at bound, exclusive ('+inf': all)   ARGV[2] prefix of the per-queue index
-- ARGV[3] limit
-- Returns the number deleted. Refuses with nothing deleted when a key has the wrong type
-- (lib_check.lua).
--! include lib_check.lua
--! include lib_failed.lua
local F = failed_keys(1)
failed_expect(F)
local bound = ARGV[1] == '+inf' and '+inf' or '(' .. ARGV[1]
local ids = redis.call('ZRANGEBYSCORE', F.times, '-inf', bound, 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do failed_expect_index(F, ARGV[2], id) end
for _, id in ipairs(ids) do failed_remove(F, ARGV[2], id) end
return #ids
