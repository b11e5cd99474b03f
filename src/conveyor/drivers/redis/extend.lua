-- Renew a lease: the job stays reserved until `seconds` from now (server time).
-- KEYS[1] reserved zset   KEYS[2] token hash   KEYS[3] pending list
-- ARGV[1] job id   ARGV[2] token   ARGV[3] seconds
-- A job a claim swept back to pending after its lease ran out, and not claimed again since,
-- still belongs to this token (lib_settle.lua): it leaves the pending list and is reserved
-- again, so that nobody else starts it while its first worker still runs it.
-- Returns 1, or 0 when the token no longer holds the job. Refuses with nothing changed when a
-- key has the wrong type (lib_check.lua).
--! include lib_check.lua
--! include lib_store.lua
expect('zset', KEYS[1])
expect('hash', KEYS[2])
expect('list', KEYS[3])
local id = ARGV[1]
if redis.call('HGET', KEYS[2], id) ~= ARGV[2] then return 0 end
if not redis.call('ZSCORE', KEYS[1], id) then redis.call('LREM', KEYS[3], 0, id) end
redis.call('ZADD', KEYS[1], clock() + tonumber(ARGV[3]), id)
return 1
