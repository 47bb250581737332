-- /pushListSign of PW_ENCRYPT under pki_verify (spec §7.2): a device that got the client list leaves its signature
-- of that list, once.
-- KEYS[1] count hash, KEYS[2] getClientList set, KEYS[3] updateModel set, KEYS[4] list signatures hash,
-- KEYS[5] timer hash
-- ARGV[1] threshold P, ARGV[2] fl_id, ARGV[3] signature (bytes), ARGV[4] now (ms), ARGV[5] iteration TTL (s)
-- Returns {code, count, uploaded}: code 0 stored, 1 threshold already reached, 2 already stored, 3 not in the
-- getClientList set; uploaded = 1 when fl_id is in the updateModel set.
local uploaded = redis.call('SISMEMBER', KEYS[3], ARGV[2])
local count = tonumber(redis.call('HGET', KEYS[1], 'pushListSign') or '0')
if count >= tonumber(ARGV[1]) then return {1, count, uploaded} end
if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 0 then return {3, count, uploaded} end
if redis.call('HSETNX', KEYS[4], ARGV[2], ARGV[3]) == 0 then return {2, count, uploaded} end
count = redis.call('HINCRBY', KEYS[1], 'pushListSign', 1)
if count == 1 then redis.call('HSETNX', KEYS[5], 'pushListSign', ARGV[4]) end
if count == tonumber(ARGV[1]) then redis.call('HSETNX', KEYS[5], 'pushListSign:closed', ARGV[4]) end
for _, i in ipairs({1, 4, 5}) do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return {0, count, uploaded}
