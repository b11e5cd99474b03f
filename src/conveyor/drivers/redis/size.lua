-- Count a queue's jobs as the worker sees them now: a due delayed job counts as pending.
-- KEYS[1] pending list   KEYS[2] delayed zset   KEYS[3] reserved zset
-- Returns {pending, delayed, reserved}.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local due = redis.call('ZCOUNT', KEYS[2], '-inf', now)
return {
  redis.call('LLEN', KEYS[1]) + due,
  redis.call('ZCARD', KEYS[2]) - due,
  redis.call('ZCARD', KEYS[3]),
}
