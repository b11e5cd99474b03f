-- Settle a job of a batch (or a chain link with catch callbacks) in one step: acknowledge it or
-- move it to the failed store, update its batch's counters, and store the messages of whatever
-- that makes happen (the chain's next link, its catch, the callbacks of the batch events fired).
-- KEYS[1] reserved zset   KEYS[2] token hash   KEYS[3] claims hash   KEYS[4] pending list
-- KEYS[5] payload hash    KEYS[6] attempts hash   KEYS[7..13] the failed store (lib_failed.lua)
-- KEYS[14] batch hash   KEYS[15] batch failures zset (job id by failure time)
-- KEYS[16..] 4 per message group: payload hash, pending list, delayed zset, notify list
-- ARGV[1] job id   ARGV[2] token   ARGV[3] 'ok' or 'failed'   ARGV[4] chain links dropped
-- ARGV[5] '1' if the job counts in the batch   ARGV[6] record uuid   ARGV[7] record queue
-- ARGV[8] packed record   ARGV[9] failed_at   ARGV[10] prefix of the per-queue failed index
-- ARGV[11..] per message group: section, count, then count (id, payload, delay) triples; a
--   group is stored when its section fired: 'always', 'then', 'catch', 'finally' (batch not
--   cancelled) or 'finally_cancelled'.
-- Returns 1, 2 when the job was settled but its batch's counters are not numbers (corrupt: the
-- job is settled and its 'always' group stored, but it is not counted and no batch event
-- fires, since the counts they depend on are unknown), or 0 (nothing written) when the token
-- no longer holds the job (lib_settle.lua: a job swept back to pending but not claimed again
-- is still held). Refuses with nothing changed when a key has the wrong type (lib_check.lua).
--! include lib_check.lua
--! include lib_settle.lua
--! include lib_store.lua
--! include lib_failed.lua
local F = failed_keys(7)
expect_settle(KEYS[1], KEYS[2], KEYS[3], KEYS[4])
expect('hash', KEYS[5], KEYS[6], KEYS[14])
expect('zset', KEYS[15])
local rebuilt = nil
if ARGV[3] ~= 'ok' then rebuilt = failed_check(F, ARGV[10], ARGV[6], ARGV[7]) end
for k = 16, #KEYS, 4 do expect_store(KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]) end
local counted = ARGV[5] == '1' and redis.call('EXISTS', KEYS[14]) == 1
local corrupt = counted and not (
  is_int(redis.call('HGET', KEYS[14], 'pending')) and is_int(redis.call('HGET', KEYS[14], 'failed'))
)
local id, ok = ARGV[1], ARGV[3] == 'ok'
if not unreserve(KEYS[1], KEYS[2], KEYS[3], KEYS[4], id, ARGV[2]) then return 0 end
redis.call('HDEL', KEYS[5], id)
redis.call('HDEL', KEYS[6], id)
local now = clock()
if not ok then failed_insert(F, ARGV[10], ARGV[6], ARGV[7], ARGV[8], ARGV[9], rebuilt) end

-- one counter update; each event fires when its token is first set
local function count(b, failures, dropped)
  local fired = {}
  local pending = tonumber(redis.call('HGET', b, 'pending') or '0')
  local failed = tonumber(redis.call('HGET', b, 'failed') or '0')
  local new = 0
  if ok then
    pending = pending - 1
  else
    new = redis.call('ZADD', failures, 'NX', now, id)
    failed = failed + new
    pending = pending - dropped
  end
  redis.call('HSET', b, 'pending', pending, 'failed', failed)
  local cancelled = redis.call('HEXISTS', b, 'cancelled_at') == 1
  if new == 1 then
    if redis.call('HSETNX', b, 'catch_token', 'fired') == 1 then fired['catch'] = true end
    if not cancelled and redis.call('HGET', b, 'allow_failures') == '0' then
      redis.call('HSET', b, 'cancelled_at', now)
      cancelled = true
    end
  end
  if ok and pending <= 0 and not cancelled then
    if redis.call('HSETNX', b, 'then_token', 'fired') == 1 then fired['then'] = true end
  end
  if pending - failed <= 0 then
    redis.call('HSETNX', b, 'finished_at', now)
    if redis.call('HSETNX', b, 'finally_token', 'fired') == 1 then
      if cancelled then fired['finally_cancelled'] = true else fired['finally'] = true end
    end
  end
  return fired
end

local fired = {}
if counted and not corrupt then fired = count(KEYS[14], KEYS[15], tonumber(ARGV[4])) end
fired['always'] = true
local at, k = 11, 16
while at <= #ARGV do
  local n = tonumber(ARGV[at + 1])
  if fired[ARGV[at]] then
    store_jobs(KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], at + 2, n, now)
  end
  at = at + 2 + 3 * n
  k = k + 4
end
if corrupt then return 2 end
return 1
