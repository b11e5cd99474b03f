-- Library included by fail.lua, the failed_*.lua scripts and the batch scripts, after
-- lib_check.lua (no KEYS or ARGV of its own).
-- The failed store is 7 keys sharing one hash tag, taken from KEYS[base..base+6] by
-- failed_keys(base): seq counter, records hash (id -> packed record), ids zset (score id),
-- times zset (score failed_at), uuids hash (uuid -> id), queue_of hash, uuid_of hash.
-- Each queue also has an index zset named `qprefix .. queue` (same hash tag, so it is local to
-- the script's slot even though it cannot be listed in KEYS ahead of time).
--   failed_expect(F)                   refuse unless the 7 keys have their types
--   failed_expect_index(F, qprefix, id)  and the index of record id's queue
--   failed_check(F, qprefix, uuid, queue)  everything failed_insert() writes for that record,
--     without writing anything; returns nil, or the highest id stored when the seq counter is
--     not a number: failed_insert(..., rebuilt) then sets the counter past it (it only has to
--     stay above every id) instead of refusing every failure from then on. When the highest id
--     is not a whole number either, it refuses: nothing is left to rebuild from.
local function failed_keys(base)
  return {
    seq = KEYS[base], records = KEYS[base + 1], ids = KEYS[base + 2], times = KEYS[base + 3],
    uuids = KEYS[base + 4], queue_of = KEYS[base + 5], uuid_of = KEYS[base + 6],
  }
end

local function failed_expect(F)
  expect('string', F.seq)
  expect('hash', F.records, F.uuids, F.queue_of, F.uuid_of)
  expect('zset', F.ids, F.times)
end

local function failed_expect_index(F, qprefix, id)
  local queue = redis.call('HGET', F.queue_of, id)
  if queue then expect('zset', qprefix .. queue) end
end

local function failed_check(F, qprefix, uuid, queue)
  failed_expect(F)
  expect('zset', qprefix .. queue)
  local old = redis.call('HGET', F.uuids, uuid)
  if old then failed_expect_index(F, qprefix, old) end
  if is_count(redis.call('GET', F.seq)) then return nil end
  local top = redis.call('ZREVRANGE', F.ids, 0, 0, 'WITHSCORES')
  local highest = tonumber(top[2] or '0')
  if not highest or highest ~= highest or highest < 0 or highest >= 1e15 then
    refuse('the failed store\'s counter and its highest id are both corrupt; nothing was changed')
  end
  return math.floor(highest)
end

local function failed_remove(F, qprefix, id)
  local queue = redis.call('HGET', F.queue_of, id)
  if not queue then return 0 end
  local uuid = redis.call('HGET', F.uuid_of, id)
  redis.call('HDEL', F.records, id)
  redis.call('HDEL', F.queue_of, id)
  redis.call('HDEL', F.uuid_of, id)
  redis.call('ZREM', F.ids, id)
  redis.call('ZREM', F.times, id)
  redis.call('ZREM', qprefix .. queue, id)
  if uuid and redis.call('HGET', F.uuids, uuid) == id then redis.call('HDEL', F.uuids, uuid) end
  return 1
end

-- one record per uuid: a job that fails again replaces its earlier record; `rebuilt` is what
-- failed_check() returned
local function failed_insert(F, qprefix, uuid, queue, packed, failed_at, rebuilt)
  local old = redis.call('HGET', F.uuids, uuid)
  if old then failed_remove(F, qprefix, old) end
  local id
  if rebuilt then
    local next_id = rebuilt + 1
    while redis.call('HEXISTS', F.records, string.format('%d', next_id)) == 1 do
      next_id = next_id + 1
    end
    id = string.format('%d', next_id)
    redis.call('SET', F.seq, id)
  else
    id = tostring(redis.call('INCR', F.seq))
  end
  redis.call('HSET', F.records, id, packed)
  redis.call('HSET', F.queue_of, id, queue)
  redis.call('HSET', F.uuid_of, id, uuid)
  redis.call('HSET', F.uuids, uuid, id)
  redis.call('ZADD', F.ids, id, id)
  redis.call('ZADD', F.times, failed_at, id)
  redis.call('ZADD', qprefix .. queue, id, id)
  return id
end
