-- /exchangeKeys of PW_ENCRYPT (spec §7.1 step 1), in MindSpore's check order after the request was parsed:
-- count >= threshold, then device meta present, then key not yet stored; then store, count, start/close the timer.
-- KEYS[1] count hash, KEYS[2] device-metas hash, KEYS[3] cipher keys hash, KEYS[4] timer hash
-- ARGV[1] threshold E, ARGV[2] fl_id, ARGV[3] the device's keys (c_pk ‖ s_pk ‖ ind_iv ‖ pw_iv ‖ pw_salt),
-- ARGV[4] now (ms), ARGV[5] iteration TTL (s), ARGV[6] "1" to check only (the caller found the request invalid)
-- Returns {code, count}: 0 stored (count = new count), 1 threshold reached, 2 keys already stored, 3 no device meta,
-- 4 checks passed, nothing stored (ARGV[6] == "1").
local threshold = tonumber(ARGV[1])
local count = tonumber(redis.call('HGET', KEYS[1], 'exchangeKeys') or '0')
if count >= threshold then return {1, count} end
if ARGV[6] == '1' then return {4, count} end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 then return {3, count} end
if redis.call('HSETNX', KEYS[3], ARGV[2], ARGV[3]) == 0 then return {2, count} end
count = redis.call('HINCRBY', KEYS[1], 'exchangeKeys', 1)
if count == 1 then redis.call('HSETNX', KEYS[4], 'exchangeKeys', ARGV[4]) end
if count == threshold then redis.call('HSETNX', KEYS[4], 'exchangeKeys:closed', ARGV[4]) end
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return {0, count}
