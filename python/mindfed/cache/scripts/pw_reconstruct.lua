-- /reconstructSecrets of PW_ENCRYPT (spec §7.1 step 9) after the request was parsed, in MindSpore's order:
-- count >= t + 1 (enough), then the device passed getClientList, then it has not sent yet; store, count.
-- KEYS[1] count hash, KEYS[2] getClientList set, KEYS[3] updateModel set, KEYS[4] reconstruct hash, KEYS[5] timers
-- ARGV[1] threshold t + 1, ARGV[2] fl_id, ARGV[3] the revealed shares (secagg/wire.py), ARGV[4] now (ms),
-- ARGV[5] iteration TTL (s)
-- Returns {code, count, uploaded}: code 0 stored (count = new count), 1 enough already, 2 already sent,
-- 3 not in getClientList; uploaded = 1 when fl_id's update is in the aggregate (MindSpore answers those SUCCEED).
local threshold = tonumber(ARGV[1])
local count = tonumber(redis.call('HGET', KEYS[1], 'reconstructSecrets') or '0')
local uploaded = redis.call('SISMEMBER', KEYS[3], ARGV[2])
if count >= threshold then return {1, count, uploaded} end
if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 0 then return {3, count, uploaded} end
if redis.call('HSETNX', KEYS[4], ARGV[2], ARGV[3]) == 0 then return {2, count, uploaded} end
count = redis.call('HINCRBY', KEYS[1], 'reconstructSecrets', 1)
if count == 1 then redis.call('HSETNX', KEYS[5], 'reconstructSecrets', ARGV[4]) end
if count == threshold then redis.call('HSETNX', KEYS[5], 'reconstructSecrets:closed', ARGV[4]) end
for _, i in ipairs({1, 4, 5}) do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return {0, count, uploaded}
