-- Acknowledge a finished job, count the start of a prefetched one, and claim the next, in one
-- step: a busy worker's hot path.
-- KEYS[1] reserved zset   KEYS[2] token hash   KEYS[3] claims hash   KEYS[4] payload hash
-- KEYS[5] attempts hash   (all five of the finished job's queue)
-- KEYS[6] token hash   KEYS[7] attempts hash   (of the prefetched job's queue)
-- KEYS[8..] 9 per queue to claim from, as reserve.lua takes them
-- ARGV[1] finished job id   ARGV[2] its token   ARGV[3] lease seconds
-- ARGV[4] token for the claim   ARGV[5] most jobs to migrate per key
-- ARGV[6] 1 to count the claim's attempt now, 0 to prefetch it (see lib_claim.lua)
-- ARGV[7] prefetched job that starts now ('' for none)   ARGV[8] its token
-- ARGV[9] its attempts, this one counted (set, not added: a retried call counts it once)
-- Returns {1 if acknowledged (0: the token no longer held the job, nothing removed), 1 if the
-- prefetched job's attempt was counted (0: none given, or its token no longer held it), then
-- what lib_claim.lua's claim() returns}. The claim happens either way.
--! include lib_settle.lua
--! include lib_store.lua
--! include lib_claim.lua
local id = ARGV[1]
local acked, begun = 0, 0
if unreserve(KEYS[1], KEYS[2], KEYS[3], id, ARGV[2]) then
  redis.call('HDEL', KEYS[4], id)
  redis.call('HDEL', KEYS[5], id)
  acked = 1
end
if ARGV[7] ~= '' and redis.call('HGET', KEYS[6], ARGV[7]) == ARGV[8] then
  redis.call('HSET', KEYS[7], ARGV[7], ARGV[9])
  begun = 1
end
local reply = claim(8, tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), clock(), tonumber(ARGV[6]))
table.insert(reply, 1, begun)
table.insert(reply, 1, acked)
return reply
