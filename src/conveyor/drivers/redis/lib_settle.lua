-- Library included by the scripts that settle a reservation (ack, ack_reserve, ack_many_claim,
-- release, fail, fail_handoff, batch_settle) or start a prefetched one (begin), after
-- lib_check.lua (no KEYS or ARGV of its own).
--   unreserve(reserved, tokens, claims, pending, id, token)
--     false, changing nothing, if `token` no longer holds job `id` (it was claimed again, or
--     settled already); else ends the reservation and returns true.
--
-- A job whose lease ran out and that a claim swept back to the pending list keeps its token
-- until it is claimed again (see lib_claim.lua). A settlement that arrives late with that token
-- (the worker finished during an outage, and came back after another worker's claim swept the
-- job) still holds it: the job is taken off the pending list and settled, instead of running a
-- second time. Once another claim took the job, the old token is refused as before.
--   rehold(reserved, pending, id, now, lease)
--     for a job whose token holds it and that starts now: if a claim swept it back to pending
--     (its lease ran out during an outage), take it off the pending list, and reserve it again
--     for `lease` seconds when it is missing or its lease is over, so that nobody else starts
--     it while it runs. Its usual case, a lease still running, is one read and no write.
local function rehold(reserved, pending, id, now, lease)
  local score = redis.call('ZSCORE', reserved, id)
  if score and tonumber(score) >= now then return end
  if not score then redis.call('LREM', pending, 0, id) end
  redis.call('ZADD', reserved, now + lease, id)
end

local function unreserve(reserved, tokens, claims, pending, id, token)
  if redis.call('HGET', tokens, id) ~= token then return false end
  if redis.call('ZREM', reserved, id) == 0 then redis.call('LREM', pending, 0, id) end
  redis.call('HDEL', tokens, id)
  redis.call('HDEL', claims, token)
  return true
end
