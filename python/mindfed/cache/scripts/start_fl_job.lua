-- Admit one device to the startFLJob round, atomically (MindSpore's HSETNX + HINCRBY can overshoot the threshold).
-- KEYS[1] count hash, KEYS[2] device-metas hash, KEYS[3] timer hash
-- ARGV[1] threshold, ARGV[2] fl_id, ARGV[3] device meta (JSON), ARGV[4] now (ms), ARGV[5] iteration TTL (s)
-- Returns {code, count}: code 0 admitted (count = new count), 1 threshold already reached, 2 fl_id already joined.
local threshold = tonumber(ARGV[1])
local count = tonumber(redis.call('HGET', KEYS[1], 'startFLJob') or '0')
if count >= threshold then return {1, count} end
if redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[3]) == 0 then return {2, count} end
count = redis.call('HINCRBY', KEYS[1], 'startFLJob', 1)
if count == 1 then redis.call('HSETNX', KEYS[3], 'startFLJob', ARGV[4]) end
if count == threshold then redis.call('HSETNX', KEYS[3], 'startFLJob:closed', ARGV[4]) end
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return {0, count}
