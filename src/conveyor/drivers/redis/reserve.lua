-- Claim the oldest available job of the first non-empty queue, in priority order.
-- KEYS    9 per queue: pending list, delayed zset, reserved zset, payload hash, attempts hash,
--         token hash (id -> token), claims hash (token -> id), notify list, failed-handoff hash
-- ARGV[1] lease seconds   ARGV[2] token for this claim   ARGV[3] most jobs to migrate per key
-- ARGV[4] 1 to count the attempt now, 0 for a prefetch (counted by begin.lua when it starts)
-- Returns what lib_claim.lua's claim() returns. Refuses with nothing changed when a key has
-- the wrong type (lib_check.lua).
--! include lib_check.lua
--! include lib_store.lua
--! include lib_claim.lua
claim_check(1)
return claim(1, tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), clock(), tonumber(ARGV[4]))
