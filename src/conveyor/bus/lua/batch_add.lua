-- Count and store more jobs of a batch that has not finished.
-- KEYS[1] batch hash   KEYS[2..] 4 per queue: payload hash, pending list, delayed zset, notify
-- ARGV[1] how many jobs to count (a chain counts every link)
-- ARGV[2..] per queue: a count, then count (id, payload, delay seconds) triples
-- Returns 1, or 0 (nothing written) when the batch is finished or gone. Refuses with nothing
-- changed when a key has the wrong type or a counter of the batch is not a number
-- (lib_check.lua): the jobs are not stored, and the caller is told.
--! include lib_check.lua
--! include lib_store.lua
local b = KEYS[1]
expect('hash', b)
for k = 2, #KEYS, 4 do expect_store(KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]) end
if redis.call('EXISTS', b) == 0 or redis.call('HEXISTS', b, 'finished_at') == 1 then return 0 end
for _, field in ipairs({'total', 'pending'}) do
  if not is_int(redis.call('HGET', b, field)) then
    refuse('batch ' .. b .. ': counter ' .. field .. ' is not a number; nothing was changed')
  end
end
redis.call('HINCRBY', b, 'total', ARGV[1])
redis.call('HINCRBY', b, 'pending', ARGV[1])
local now = clock()
local at, k = 2, 2
while at <= #ARGV do
  local count = tonumber(ARGV[at])
  store_jobs(KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], at + 1, count, now)
  at = at + 1 + 3 * count
  k = k + 4
end
return 1
