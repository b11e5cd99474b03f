-- Settle a reservation as done and store its successors (a chain's next link) atomically.
-- KEYS[1] reserved zset   KEYS[2] token hash   KEYS[3] claims hash   KEYS[4] pending list
-- KEYS[5] payload hash    KEYS[6] attempts hash
-- KEYS[7..] 4 per successor queue: payload hash, pending list, delayed zset, notify list
-- ARGV[1] job id   ARGV[2] token
-- ARGV[3..] per successor queue: a count n, then n (id, payload, delay seconds) triples
-- Returns 1, or 0 (nothing written) when the token no longer holds the job (lib_settle.lua:
-- a job swept back to pending but not claimed again is still held). Refuses with nothing
-- changed when a key has the wrong type (lib_check.lua).
--! include lib_check.lua
--! include lib_settle.lua
--! include lib_store.lua
expect_settle(KEYS[1], KEYS[2], KEYS[3], KEYS[4])
expect('hash', KEYS[5], KEYS[6])
for k = 7, #KEYS, 4 do expect_store(KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]) end
local id = ARGV[1]
if not unreserve(KEYS[1], KEYS[2], KEYS[3], KEYS[4], id, ARGV[2]) then return 0 end
redis.call('HDEL', KEYS[5], id)
redis.call('HDEL', KEYS[6], id)
if #KEYS > 6 then
  local at = 3
  for k = 7, #KEYS, 4 do
    local count = tonumber(ARGV[at])
    store_jobs(KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], at + 1, count, nil)
    at = at + 1 + 3 * count
  end
end
return 1
