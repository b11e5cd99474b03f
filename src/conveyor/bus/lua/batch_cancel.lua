-- Mark a batch cancelled (once). KEYS[1] batch hash. Returns 1 if this call cancelled it.
-- Its one write comes last, so a key of the wrong type fails it with nothing changed.
--! include lib_store.lua
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HSETNX', KEYS[1], 'cancelled_at', tostring(clock()))
