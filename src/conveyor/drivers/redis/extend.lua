-- Renew a lease: the job stays reserved until `seconds` from now (server time).
-- KEYS[1] reserved zset   KEYS[2] token hash
-- ARGV[1] job id   ARGV[2] token   ARGV[3] seconds
-- Returns 1, or 0 when the token no longer holds the job.
local id = ARGV[1]
if redis.call('HGET', KEYS[2], id) ~= ARGV[2] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), id)
return 1
