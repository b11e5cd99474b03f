-- Library included by reserve.lua, ack_reserve.lua and ack_many_claim.lua, after lib_check.lua
-- (reads KEYS from an index, no ARGV).
--   claim_check(base)
--     Refuse (lib_check.lua) unless the keys claim(base, ...) writes have their types: the
--     caller runs it before its own first write.
--   claim(base, lease, token, limit, now, count)
--     Claim the oldest available job of the first non-empty queue, in priority order, from the
--     queues whose keys start at KEYS[base], 9 per queue: pending list, delayed zset, reserved
--     zset, payload hash, attempts hash, token hash (id -> token), claims hash (token -> id),
--     notify list, failed-handoff hash. `limit` caps the jobs moved per key (see below).
--     Returns {queue number (1-based), id, payload, attempts, handoff}, or when nothing is
--     available {0, seconds until the next delayed job or lease deadline (-1: none), handoff};
--     handoff is 1 when a queue holds failed records still to be moved to the failed store.
--     With `count` 0 the claim is a prefetch: the attempts hash is left alone (begin.lua counts
--     the attempt when the job starts), and the attempts returned are what it will be then.
--
-- Before claiming, due delayed jobs and reservations whose lease ran out move to the pending
-- list: the claim itself is the sweeper. A swept job keeps its token until it is claimed again,
-- so a settlement with it that arrives late is still taken (see lib_settle.lua); only the claim
-- record (claims hash) goes, so a retried claim with that token does not get the job back.
--
-- A claim is idempotent per token: if the reply to an earlier call with this token was lost
-- (a dropped connection), the retry gets the job that call claimed, instead of claiming a
-- second one and leaving the first reserved, its attempt spent, until its lease runs out.
--
-- A job whose stored attempt count is not a number (corrupt data: HINCRBY would fail after the
-- job left the pending list, and Redis would not put it back) is claimed like any other but
-- left uncounted and returned with attempts -1: the driver then moves it to the failed store
-- with the reason. It is never run, since how often it ran is unknown; resetting the count
-- instead could run a job past its tries. Should the driver die before that, the lease runs
-- out and the next claim finds it again.
local function migrate(from, pending, tokens, claims, now, limit)
  local due = redis.call('ZRANGEBYSCORE', from, '-inf', now, 'LIMIT', 0, limit)
  if #due == 0 then return end
  redis.call('ZREM', from, unpack(due))
  if tokens then
    for _, id in ipairs(due) do
      local old = redis.call('HGET', tokens, id)
      if old then redis.call('HDEL', claims, old) end
    end
  end
  redis.call('RPUSH', pending, unpack(due))
end

-- seconds until the first member of a zset falls due, or `soonest` if that is sooner
local function next_due(key, now, soonest)
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if #first == 0 then return soonest end
  local wait = math.max(0, tonumber(first[2]) - now)
  if soonest < 0 or wait < soonest then return wait end
  return soonest
end

-- the attempts a claim reports: the stored count plus one, less `count` when it is counted
-- already; -1 when the stored count is not a number
local function attempts_after(stored, count)
  if not is_count(stored) then return -1 end
  return (tonumber(stored) or 0) + 1 - count
end

local function claim_check(base)
  for b = base - 1, #KEYS - 9, 9 do
    expect('list', KEYS[b + 1], KEYS[b + 8])
    expect('zset', KEYS[b + 2], KEYS[b + 3])
    expect('hash', KEYS[b + 4], KEYS[b + 5], KEYS[b + 6], KEYS[b + 7], KEYS[b + 9])
  end
end

local function claim(base, lease, token, limit, now, count)
  local handoff, soonest = 0, -1
  for q = 1, (#KEYS - base + 1) / 9 do
    local b = base + (q - 1) * 9 - 1
    local pending, delayed, reserved = KEYS[b + 1], KEYS[b + 2], KEYS[b + 3]
    local payload, attempts, tokens, claims = KEYS[b + 4], KEYS[b + 5], KEYS[b + 6], KEYS[b + 7]
    if redis.call('EXISTS', KEYS[b + 9]) == 1 then handoff = 1 end
    local prior = redis.call('HGET', claims, token)
    if prior and redis.call('HGET', tokens, prior) == token then
      local n = attempts_after(redis.call('HGET', attempts, prior), count)
      return {q, prior, redis.call('HGET', payload, prior), n, handoff}
    end
    migrate(delayed, pending, nil, nil, now, limit)
    migrate(reserved, pending, tokens, claims, now, limit)
    while true do
      local id = redis.call('LPOP', pending)
      if not id then break end
      local body = redis.call('HGET', payload, id)
      if body then
        local n = attempts_after(redis.call('HGET', attempts, id), 0)
        if count == 1 and n > 0 then n = redis.call('HINCRBY', attempts, id, 1) end
        redis.call('HSET', tokens, id, token)
        redis.call('HSET', claims, token, id)
        redis.call('ZADD', reserved, now + lease, id)
        return {q, id, body, n, handoff}
      end
    end
    -- nothing to claim: any wake-up token left here is stale
    redis.call('DEL', KEYS[b + 8])
    soonest = next_due(delayed, now, soonest)
    soonest = next_due(reserved, now, soonest)
  end
  return {0, tostring(soonest), handoff}
end
