-- Library included by push.lua, ack.lua and release.lua (no KEYS or ARGV of its own).
--   clock()                       Redis server time in seconds, the only clock leases trust.
--   wake(notify, n)               leave up to n tokens (capped) for idle workers blocked on BLPOP.
--   store_jobs(payload, pending, delayed, notify, first, count, now)
--                                 store `count` jobs read from ARGV[first..] as
--                                 (id, payload, delay seconds) triples; an id already stored is
--                                 skipped, so a push retried after a lost reply adds nothing.
--                                 `now` may be nil: the clock is then read for a delayed job only.
local WAKE_CAP = 256

local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function wake(notify, n)
  if n < 1 then return end
  if n > WAKE_CAP then n = WAKE_CAP end
  local tokens = {}
  for i = 1, n do tokens[i] = '1' end
  redis.call('LPUSH', notify, unpack(tokens))
  redis.call('LTRIM', notify, 0, WAKE_CAP - 1)
end

local function store_jobs(payload, pending, delayed, notify, first, count, now)
  local ready, later = {}, 0
  for i = first, first + 3 * (count - 1), 3 do
    local id = ARGV[i]
    if redis.call('HSETNX', payload, id, ARGV[i + 1]) == 1 then
      local delay = tonumber(ARGV[i + 2])
      if delay > 0 then
        now = now or clock()
        redis.call('ZADD', delayed, now + delay, id)
        later = 1
      else
        ready[#ready + 1] = id
      end
    end
  end
  -- one RPUSH per 1000 ids: fewer calls, and within the reach of unpack (a batch can be large)
  for i = 1, #ready, 1000 do
    redis.call('RPUSH', pending, unpack(ready, i, math.min(i + 999, #ready)))
  end
  -- a delayed job still wakes one waiter, so that it shortens its wait to the new due time
  wake(notify, math.max(#ready, later))
  return #ready
end
