-- Reserve one accepted update in the updateModel round, atomically.
-- KEYS[1] count hash, KEYS[2] updateModel fl_id set, KEYS[3] per-server updateModel count hash, KEYS[4] timer hash
-- ARGV[1] threshold, ARGV[2] fl_id, ARGV[3] node_id, ARGV[4] now (ms), ARGV[5] iteration TTL (s)
-- Returns {code, count}: code 0 reserved (count = new cluster count), 1 threshold already reached,
-- 2 fl_id already uploaded in this iteration.
local threshold = tonumber(ARGV[1])
local count = tonumber(redis.call('HGET', KEYS[1], 'updateModel') or '0')
if count >= threshold then return {1, count} end
if redis.call('SADD', KEYS[2], ARGV[2]) == 0 then return {2, count} end
count = redis.call('HINCRBY', KEYS[1], 'updateModel', 1)
redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
if count == 1 then redis.call('HSETNX', KEYS[4], 'updateModel', ARGV[4]) end
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return {0, count}
