-- The gate, the reservation and the write-ahead log of one updateModel, in one round trip, with MindSpore's check order (spec §3.5):
-- count ≥ threshold, then device meta present, then (checks the caller did locally: iteration, feature map), then
-- fl_id not yet uploaded.
-- KEYS[1] count hash, KEYS[2] updateModel fl_id set, KEYS[3] per-server updateModel count hash, KEYS[4] timer hash,
-- KEYS[5] device-metas hash, KEYS[6] this server's reserved fl_id set, KEYS[7] this server's write-ahead log
-- ARGV[1] threshold, ARGV[2] fl_id, ARGV[3] node_id, ARGV[4] now (ms), ARGV[5] iteration TTL (s),
-- ARGV[6] "1" when the caller already found the request invalid: check only, reserve nothing,
-- ARGV[7] the raw request body, logged with the reservation so a reserved update is always durable ("" = no log)
-- KEYS[8] and ARGV[8] under PW_ENCRYPT only: the getSecrets set, "1" (spec §3.5 step 8: only devices that received
-- their peers' shares may upload, or their masks could not be removed); under STABLE_PW_ENCRYPT the getKeys set
-- Returns {code, count, meta}: code 0 reserved (count = new cluster count), 1 threshold already reached,
-- 2 fl_id already uploaded, 3 no device meta for fl_id, 4 checks passed but nothing reserved (ARGV[6] == "1"),
-- 5 not in the getSecrets (getKeys) set.
local threshold = tonumber(ARGV[1])
local count = tonumber(redis.call('HGET', KEYS[1], 'updateModel') or '0')
if count >= threshold then return {1, count, false} end
local meta = redis.call('HGET', KEYS[5], ARGV[2])
if not meta then return {3, count, false} end
if ARGV[6] == '1' then return {4, count, meta} end
if ARGV[8] == '1' and redis.call('SISMEMBER', KEYS[8], ARGV[2]) == 0 then return {5, count, meta} end
if redis.call('SADD', KEYS[2], ARGV[2]) == 0 then return {2, count, meta} end
count = redis.call('HINCRBY', KEYS[1], 'updateModel', 1)
redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
redis.call('SADD', KEYS[6], ARGV[2])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[7], ARGV[2], ARGV[7]) end
if count == 1 then redis.call('HSETNX', KEYS[4], 'updateModel', ARGV[4]) end
for _, i in ipairs({1, 2, 3, 4, 6, 7}) do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return {0, count, meta}
