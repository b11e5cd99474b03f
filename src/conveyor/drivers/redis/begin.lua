-- Count the attempt of a prefetched job that starts now (see lib_claim.lua).
-- KEYS[1] token hash   KEYS[2] attempts hash
-- ARGV[1] job id   ARGV[2] token   ARGV[3] its attempts, this one counted
-- The count is set, not added: while the token holds the job nothing else changes it, and a
-- call retried after a lost reply counts the attempt once. Its one write comes last, so a key
-- of the wrong type fails it with nothing changed (no lib_check.lua needed).
-- Returns 1, or 0 when the token no longer holds the job.
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
