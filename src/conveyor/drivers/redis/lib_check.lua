-- Library included by every script that writes, before any other library (no KEYS or ARGV of
-- its own). Redis does not undo a script's writes when a later command of it fails, so a job
-- could be popped from one key and never reach the next. A script therefore checks what its
-- writes rely on before its first write: a key of the wrong type or a stored count that is not
-- a number makes it refuse with nothing changed, with an error reply starting CORRUPT (the
-- driver raises it as StorageUnavailable, which a worker retries like an outage).
--   refuse(message)      raise the CORRUPT error reply
--   expect(kind, ...)    refuse unless each key given is absent or of type `kind`
--   expect_store(payload, pending, delayed, notify)    the keys lib_store.lua's store_jobs writes
--   expect_settle(reserved, tokens, claims, pending)   the keys lib_settle.lua's unreserve writes
--   is_count(value)      value is absent (false) or a whole number >= 0 written as HINCRBY
--                        writes it (no sign, no leading zero) and small enough (15 digits) for
--                        Lua to hold exactly
--   is_int(value)        the same with an optional minus sign
local function refuse(message)
  error({err = 'CORRUPT ' .. message})
end

-- keys already checked by this call: a script settling eight jobs of one queue names the same
-- few keys eight times, and asks their type once
local checked = {}

local function expect(kind, ...)
  for _, key in ipairs({...}) do
    if checked[key] ~= kind then
      local found = redis.call('TYPE', key).ok
      if found ~= 'none' and found ~= kind then
        refuse('key ' .. key .. ' holds a ' .. found .. ', not a ' .. kind .. '; nothing was changed')
      end
      checked[key] = kind
    end
  end
end

local function expect_store(payload, pending, delayed, notify)
  expect('hash', payload)
  expect('list', pending, notify)
  expect('zset', delayed)
end

local function expect_settle(reserved, tokens, claims, pending)
  expect('zset', reserved)
  expect('hash', tokens, claims)
  expect('list', pending)
end

local function is_count(value)
  if not value then return true end
  return #value <= 15 and (value == '0' or string.match(value, '^[1-9]%d*$') ~= nil)
end

local function is_int(value)
  if value and string.sub(value, 1, 1) == '-' then value = string.sub(value, 2) end
  return is_count(value)
end
