-- Acknowledge a finished job and claim the next, in one step: the hot path of a busy worker
-- that does not prefetch (one that does calls ack_many_claim.lua).
-- KEYS[1] reserved zset   KEYS[2] token hash   KEYS[3] claims hash   KEYS[4] pending list
-- KEYS[5] payload hash    KEYS[6] attempts hash   (all six of the finished job's queue)
-- KEYS[7..] 9 per queue to claim from, as reserve.lua takes them
-- ARGV[1] finished job id   ARGV[2] its token   ARGV[3] lease seconds
-- ARGV[4] token for the claim   ARGV[5] most jobs to migrate per key
-- ARGV[6] 1 to count the claim's attempt now, 0 to prefetch it (see lib_claim.lua)
-- Returns {1 if acknowledged (0: the token no longer held the job, nothing removed), then what
-- lib_claim.lua's claim() returns}. The claim happens either way. Refuses with nothing changed
-- when a key has the wrong type (lib_check.lua).
--! include lib_check.lua
--! include lib_settle.lua
--! include lib_store.lua
--! include lib_claim.lua
expect_settle(KEYS[1], KEYS[2], KEYS[3], KEYS[4])
expect('hash', KEYS[5], KEYS[6])
claim_check(7)
local id = ARGV[1]
local acked = 0
if unreserve(KEYS[1], KEYS[2], KEYS[3], KEYS[4], id, ARGV[2]) then
  redis.call('HDEL', KEYS[5], id)
  redis.call('HDEL', KEYS[6], id)
  acked = 1
end
local reply = claim(7, tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), clock(), tonumber(ARGV[6]))
table.insert(reply, 1, acked)
return reply
