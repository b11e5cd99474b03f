-- Library included by ack.lua, release.lua, fail.lua and fail_handoff.lua (no KEYS or ARGV of
-- its own).
--   unreserve(reserved, tokens, claims, id, token)
--     false, changing nothing, if `token` no longer holds job `id` (its lease ran out and it
--     was claimed again, or it was settled already); else ends the reservation and returns true.
local function unreserve(reserved, tokens, claims, id, token)
  if redis.call('HGET', tokens, id) ~= token then return false end
  redis.call('ZREM', reserved, id)
  redis.call('HDEL', tokens, id)
  redis.call('HDEL', claims, token)
  return true
end
