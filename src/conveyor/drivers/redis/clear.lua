-- Delete every job of a queue: pending, delayed and reserved. Failed records stay.
-- KEYS[1] payload hash, then every other key of the queue to drop (lists, zsets, hashes)
-- Returns the number of jobs deleted (counted from the payload hash; a payload key of another
-- type, i.e. corrupt, counts none but is deleted too, so a clear always clears).
local n = 0
if redis.call('TYPE', KEYS[1]).ok == 'hash' then n = redis.call('HLEN', KEYS[1]) end
redis.call('UNLINK', unpack(KEYS))
return n
