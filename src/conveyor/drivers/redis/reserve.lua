-- Claim the oldest available job of the first non-empty queue, in priority order.
-- KEYS    8 per queue: pending list, delayed zset, reserved zset, payload hash, attempts hash,
--         token hash, notify list, failed-handoff hash
-- ARGV[1] lease seconds   ARGV[2] token for this claim   ARGV[3] most jobs to migrate per key
-- Returns {queue number (1-based), id, payload, attempts, handoff}, or when nothing is available
-- {0, seconds until the next delayed job or lease deadline (-1: none), handoff}; handoff is 1
-- when a queue holds failed records still to be moved to the failed store (cluster mode).
--
-- Before claiming, due delayed jobs and reservations whose lease ran out move to the pending
-- list (the latter losing their token, so the worker that lost the lease cannot settle them):
-- the claim itself is the sweeper.
--! include lib_store.lua
local lease, token, limit = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local now = clock()
local handoff = 0
local soonest = -1

local function migrate(from, pending, tokens)
  local due = redis.call('ZRANGEBYSCORE', from, '-inf', now, 'LIMIT', 0, limit)
  if #due == 0 then return end
  redis.call('ZREM', from, unpack(due))
  if tokens then redis.call('HDEL', tokens, unpack(due)) end
  redis.call('RPUSH', pending, unpack(due))
end

local function next_due(key)
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if #first == 0 then return end
  local wait = math.max(0, tonumber(first[2]) - now)
  if soonest < 0 or wait < soonest then soonest = wait end
end

for q = 1, #KEYS / 8 do
  local b = (q - 1) * 8
  local pending, delayed, reserved = KEYS[b + 1], KEYS[b + 2], KEYS[b + 3]
  local payload, attempts, tokens = KEYS[b + 4], KEYS[b + 5], KEYS[b + 6]
  if redis.call('EXISTS', KEYS[b + 8]) == 1 then handoff = 1 end
  migrate(delayed, pending, nil)
  migrate(reserved, pending, tokens)
  while true do
    local id = redis.call('LPOP', pending)
    if not id then break end
    local body = redis.call('HGET', payload, id)
    if body then
      local n = redis.call('HINCRBY', attempts, id, 1)
      redis.call('HSET', tokens, id, token)
      redis.call('ZADD', reserved, now + lease, id)
      return {q, id, body, n, handoff}
    end
  end
  -- nothing to claim: any wake-up token left here is stale
  redis.call('DEL', KEYS[b + 7])
  next_due(delayed)
  next_due(reserved)
end
return {0, tostring(soonest), handoff}
