-- Delete every job of a queue: pending, delayed and reserved. Failed records stay.
-- KEYS[1] payload hash, then every other key of the queue to drop (lists, zsets, hashes)
-- Returns the number of jobs deleted.
local n = redis.call('HLEN', KEYS[1])
redis.call('UNLINK', unpack(KEYS))
return n
