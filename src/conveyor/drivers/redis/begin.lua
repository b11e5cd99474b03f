-- Count the attempt of a prefetched job that starts now (see lib_claim.lua), and hold it
-- again if its lease ran out meanwhile (lib_settle.lua's rehold).
-- KEYS[1] token hash   KEYS[2] attempts hash   KEYS[3] reserved zset   KEYS[4] pending list
-- ARGV[1] job id   ARGV[2] token   ARGV[3] its attempts, this one counted   ARGV[4] lease seconds
-- The count is set, not added: while the token holds the job nothing else changes it, and a
-- call retried after a lost reply counts the attempt once.
-- Returns 1, or 0 when the token no longer holds the job. Refuses with nothing changed when a
-- key has the wrong type (lib_check.lua).
--! include lib_check.lua
--! include lib_store.lua
--! include lib_settle.lua
expect('hash', KEYS[1], KEYS[2])
expect('zset', KEYS[3])
expect('list', KEYS[4])
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
rehold(KEYS[3], KEYS[4], ARGV[1], clock(), tonumber(ARGV[4]))
return 1
