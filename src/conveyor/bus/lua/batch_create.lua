-- Store a batch and its first jobs in one step; nothing if a batch with that id exists.
-- KEYS[1] batch hash   KEYS[2] batches zset (id by creation time)
-- KEYS[3..] 4 per queue of jobs: payload hash, pending list, delayed zset, notify list
-- ARGV[1] batch id   ARGV[2] n   ARGV[3 .. 2 + 2n] field, value pairs of the batch hash
-- ARGV[3 + 2n ..] per queue: a count, then count (id, payload, delay seconds) triples
-- Returns 1, or 0 when the batch existed already. Refuses with nothing changed when a key has
-- the wrong type (lib_check.lua).
--! include lib_check.lua
--! include lib_store.lua
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
expect('zset', KEYS[2])
for k = 3, #KEYS, 4 do expect_store(KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]) end
local now = clock()
local n = tonumber(ARGV[2])
local fields = {'created_at', tostring(now)}
for i = 3, 2 + 2 * n do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('ZADD', KEYS[2], now, ARGV[1])
local at, k = 3 + 2 * n, 3
while at <= #ARGV do
  local count = tonumber(ARGV[at])
  store_jobs(KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], at + 1, count, now)
  at = at + 1 + 3 * count
  k = k + 4
end
return 1
