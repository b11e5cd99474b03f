-- Library included by fail.lua and the failed_*.lua scripts (no KEYS or ARGV of its own).
-- The failed store is 7 keys sharing one hash tag, taken from KEYS[base..base+6] by
-- failed_keys(base): seq counter, records hash (id -> packed record), ids zset (score id),
-- times zset (score failed_at), uuids hash (uuid -> id), queue_of hash, uuid_of hash.
-- Each queue also has an index zset named `qprefix .. queue` (same hash tag, so it is local to
-- the script's slot even though it cannot be listed in KEYS ahead of time).
local function failed_keys(base)
  return {
    seq = KEYS[base], records = KEYS[base + 1], ids = KEYS[base + 2], times = KEYS[base + 3],
    uuids = KEYS[base + 4], queue_of = KEYS[base + 5], uuid_of = KEYS[base + 6],
  }
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

-- one record per uuid: a job that fails again replaces its earlier record
local function failed_insert(F, qprefix, uuid, queue, packed, failed_at)
  local old = redis.call('HGET', F.uuids, uuid)
  if old then failed_remove(F, qprefix, old) end
  local id = tostring(redis.call('INCR', F.seq))
  redis.call('HSET', F.records, id, packed)
  redis.call('HSET', F.queue_of, id, queue)
  redis.call('HSET', F.uuid_of, id, uuid)
  redis.call('HSET', F.uuids, uuid, id)
  redis.call('ZADD', F.ids, id, id)
  redis.call('ZADD', F.times, failed_at, id)
  redis.call('ZADD', qprefix .. queue, id, id)
  return id
end
