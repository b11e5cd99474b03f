-- Settle a reservation as done and store its successors (a chain's next link) atomically.
-- KEYS[1] reserved zset   KEYS[2] token hash   KEYS[3] payload hash   KEYS[4] attempts hash
-- KEYS[5..] 4 per successor queue: payload hash, pending list, delayed zset, notify list
-- ARGV[1] job id   ARGV[2] token
-- ARGV[3..] per successor queue: a count n, then n (id, payload, delay seconds) triples
-- Returns 1, or 0 (nothing written) when the token no longer holds the job.
--! include lib_store.lua
local id = ARGV[1]
if redis.call('HGET', KEYS[2], id) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], id)
redis.call('HDEL', KEYS[2], id)
redis.call('HDEL', KEYS[3], id)
redis.call('HDEL', KEYS[4], id)
if #KEYS > 4 then
  local now = clock()
  local at = 3
  for k = 5, #KEYS, 4 do
    local count = tonumber(ARGV[at])
    store_jobs(KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], at + 1, count, now)
    at = at + 1 + 3 * count
  end
end
return 1
