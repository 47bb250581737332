-- A PW_ENCRYPT polling round (getKeys, getSecrets, getClientList; spec §7.1 steps 2, 4, 7): the previous round must
-- have reached its threshold, the device must have passed it, and each device passes this round once.
-- KEYS[1] count hash, KEYS[2] what the device must be in (a set, or the cipher keys hash), KEYS[3] this round's set,
-- KEYS[4] timer hash
-- ARGV[1] previous round's name, ARGV[2] its threshold, ARGV[3] fl_id, ARGV[4] this round's name,
-- ARGV[5] this round's threshold (closes its timer), ARGV[6] now (ms), ARGV[7] iteration TTL (s)
-- Returns {code, count}: 0 joined (count = this round's new count), 1 previous round not complete,
-- 2 already joined, 3 not in KEYS[2].
local before = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if before < tonumber(ARGV[2]) then return {1, before} end
local member
if redis.call('TYPE', KEYS[2]).ok == 'hash' then member = redis.call('HEXISTS', KEYS[2], ARGV[3])
else member = redis.call('SISMEMBER', KEYS[2], ARGV[3]) end
if member == 0 then return {3, before} end
if redis.call('SADD', KEYS[3], ARGV[3]) == 0 then return {2, before} end
local count = redis.call('HINCRBY', KEYS[1], ARGV[4], 1)
if count == 1 then redis.call('HSETNX', KEYS[4], ARGV[4], ARGV[6]) end
if count == tonumber(ARGV[5]) then redis.call('HSETNX', KEYS[4], ARGV[4] .. ':closed', ARGV[6]) end
for _, i in ipairs({1, 3, 4}) do redis.call('EXPIRE', KEYS[i], ARGV[7]) end
return {0, count}
