-- Acknowledge several finished jobs, count the start of a prefetched one, and claim up to n
-- jobs, in one step: the hot path of a worker that prefetches several jobs ahead.
-- KEYS[1] token hash   KEYS[2] attempts hash   KEYS[3] reserved zset   KEYS[4] pending list
--   (of the prefetched job's queue: it is held again if its lease ran out, see rehold)
-- KEYS[5 .. 4 + 6m] per finished job: reserved zset, token hash, claims hash, pending list,
--   payload hash, attempts hash (of its queue)
-- KEYS[5 + 6m ..] 9 per queue to claim from, as reserve.lua takes them
-- ARGV[1] lease seconds   ARGV[2] token prefix (claim i uses token prefix..':'..i)
-- ARGV[3] most jobs to migrate per key   ARGV[4] 1 to count the first claim's attempt now (it
-- starts at once), 0 to prefetch it too (see lib_claim.lua); the others are prefetches
-- ARGV[5] most jobs to claim (n)
-- ARGV[6] prefetched job that starts now ('' for none)   ARGV[7] its token
-- ARGV[8] its attempts, this one counted (set, not added: a retried call counts it once)
-- ARGV[9] m, the number of finished jobs   ARGV[10 ..] their id and token, in pairs
-- Returns {1 if the prefetched job's attempt was counted, handoff, then m flags (1: acknowledged,
-- 0: its token no longer held it), then for each job claimed: queue number, id, payload,
-- attempts}. Claims are idempotent per token (see lib_claim.lua), so a call retried after a
-- lost reply gets the same jobs. Refuses with nothing changed when a key has the wrong type
-- (lib_check.lua).
--! include lib_check.lua
--! include lib_store.lua
--! include lib_settle.lua
--! include lib_claim.lua
local m = tonumber(ARGV[9])
local base = 5 + 6 * m
expect('hash', KEYS[1], KEYS[2])
expect('zset', KEYS[3])
expect('list', KEYS[4])
for k = 4, base - 6, 6 do
  expect_settle(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4])
  expect('hash', KEYS[k + 5], KEYS[k + 6])
end
claim_check(base)
local reply = {0, 0}
if ARGV[6] ~= '' and redis.call('HGET', KEYS[1], ARGV[6]) == ARGV[7] then
  redis.call('HSET', KEYS[2], ARGV[6], ARGV[8])
  rehold(KEYS[3], KEYS[4], ARGV[6], clock(), tonumber(ARGV[1]))
  reply[1] = 1
end
for i = 1, m do
  local k, id = 4 + (i - 1) * 6, ARGV[8 + 2 * i]
  if unreserve(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], id, ARGV[9 + 2 * i]) then
    redis.call('HDEL', KEYS[k + 5], id)
    redis.call('HDEL', KEYS[k + 6], id)
    table.insert(reply, 1)
  else
    table.insert(reply, 0)
  end
end
local lease, limit, count = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = clock()
for i = 1, tonumber(ARGV[5]) do
  local got = claim(base, lease, ARGV[2] .. ':' .. i, limit, now, i == 1 and count or 0)
  if got[#got] == 1 then reply[2] = 1 end
  if got[1] == 0 then break end
  for j = 1, 4 do table.insert(reply, got[j]) end
end
return reply
