-- Store new jobs of one queue.
-- KEYS[1] payload hash   KEYS[2] pending list   KEYS[3] delayed zset   KEYS[4] notify list
-- ARGV    (id, payload, delay seconds) triples, one per job
-- Returns the number of jobs stored ready to run. Refuses with nothing stored when a key has
-- the wrong type (lib_check.lua): a payload stored without its place in a list would make a
-- retried push skip the job for good.
--! include lib_check.lua
--! include lib_store.lua
expect_store(KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return store_jobs(KEYS[1], KEYS[2], KEYS[3], KEYS[4], 1, #ARGV / 3, nil)
