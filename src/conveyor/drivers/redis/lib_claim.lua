-- Claim the oldest available job of the first non-empty queue, in priority order.
-- KEYS    9 per queue: pending list, delayed zset, reserved zset, payload hash, attempts hash,
--         token hash (id -> token), claims hash (token -> id), notify list, failed-handoff hash
-- ARGV[1] lease seconds   ARGV[2] token for this claim   ARGV[3] most jobs to migrate per key
-- Returns {queue number (1-based), id, payload, attempts, handoff}, or when nothing is available
-- {0, seconds until the next delayed job or lease deadline (-1: none), handoff}; handoff is 1
-- when a queue holds failed records still to be moved to the failed store (cluster mode).
--
-- Before claiming, due delayed jobs and reservations whose lease ran out move to the pending
-- list (the latter losing their token, so the worker that lost the lease cannot settle them):
-- the claim itself is the sweeper.
--
-- A claim is idempotent per token: if the reply to an earlier call with this token was lost
-- (a dropped connection), the retry gets the job that call claimed, instead of claiming a
-- second one and leaving the first reserved, its attempt spent, until its lease runs out.
--! include lib_store.lua
local lease, token, limit = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local now = clock()
local handoff = 0
local soonest = -1

local function migrate(from, pending, tokens, claims)
  local due = redis.call('ZRANGEBYSCORE', from, '-inf', now, 'LIMIT', 0, limit)
  if #due == 0 then return end
  redis.call('ZREM', from, unpack(due))
  if tokens then
    for _, id in ipairs(due) do
      local old = redis.call('HGET', tokens, id)
      if old then redis.call('HDEL', claims, old) end
    end
    redis.call('HDEL', tokens, unpack(due))
  end
  redis.call('RPUSH', pending, unpack(due))
end

local function claimed_before(payload, attempts, tokens, claims)
  local id = redis.call('HGET', claims, token)
  if not id or redis.call('HGET', tokens, id) ~= token then return nil end
  return {id, redis.call('HGET', payload, id), tonumber(redis.call('HGET', attempts, id))}
end

local function next_due(key)
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if #first == 0 then return end
  local wait = math.max(0, tonumber(first[2]) - now)
  if soonest < 0 or wait < soonest then soonest = wait end
end

for q = 1, #KEYS / 9 do
  local b = (q - 1) * 9
  local pending, delayed, reserved = KEYS[b + 1], KEYS[b + 2], KEYS[b + 3]
  local payload, attempts, tokens, claims = KEYS[b + 4], KEYS[b + 5], KEYS[b + 6], KEYS[b + 7]
  if redis.call('EXISTS', KEYS[b + 9]) == 1 then handoff = 1 end
  local prior = claimed_before(payload, attempts, tokens, claims)
  if prior then return {q, prior[1], prior[2], prior[3], handoff} end
  migrate(delayed, pending, nil, nil)
  migrate(reserved, pending, tokens, claims)
  while true do
    local id = redis.call('LPOP', pending)
    if not id then break end
    local body = redis.call('HGET', payload, id)
    if body then
      local n = redis.call('HINCRBY', attempts, id, 1)
      redis.call('HSET', tokens, id, token)
      redis.call('HSET', claims, token, id)
      redis.call('ZADD', reserved, now + lease, id)
      return {q, id, body, n, handoff}
    end
  end
  -- nothing to claim: any wake-up token left here is stale
  redis.call('DEL', KEYS[b + 8])
  next_due(delayed)
  next_due(reserved)
end
return {0, tostring(soonest), handoff}
