-- /shareSecrets of PW_ENCRYPT (spec §7.1 step 3) after the request was parsed: count >= threshold, then the device
-- passed getKeys, then it has not shared yet, then every addressee holds keys; store each encrypted share in its
-- addressee's inbox, count, start/close the timer. The shares stay opaque: only the addressee can decrypt them.
-- KEYS[1] count hash, KEYS[2] getKeys set, KEYS[3] shareSecrets set, KEYS[4] timer hash, KEYS[5] cipher keys hash,
-- KEYS[6..] the addressees' inbox hashes, in the order of the (addressee, share) pairs of ARGV
-- ARGV[1] threshold S, ARGV[2] fl_id, ARGV[3] now (ms), ARGV[4] iteration TTL (s), ARGV[5] "1" to check only,
-- ARGV[6], ARGV[7], ...: addressee fl_id, encrypted share (4-byte big-endian index ‖ ciphertext), ...
-- Returns {code, count}: 0 stored, 1 threshold reached, 2 already shared, 3 not in getKeys, 4 bad addressee
-- (unknown, itself, or twice), 5 checks passed, nothing stored (ARGV[5] == "1").
local threshold = tonumber(ARGV[1])
local count = tonumber(redis.call('HGET', KEYS[1], 'shareSecrets') or '0')
if count >= threshold then return {1, count} end
if ARGV[5] == '1' then return {5, count} end
if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 0 then return {3, count} end
if redis.call('SISMEMBER', KEYS[3], ARGV[2]) == 1 then return {2, count} end
local seen = {}
for i = 6, #ARGV, 2 do
  local to = ARGV[i]
  if to == ARGV[2] or seen[to] or redis.call('HEXISTS', KEYS[5], to) == 0 then return {4, count} end
  seen[to] = true
end
for i = 6, #ARGV, 2 do
  local inbox = KEYS[6 + (i - 6) / 2]
  redis.call('HSET', inbox, ARGV[2], ARGV[i + 1])
  redis.call('EXPIRE', inbox, ARGV[4])
end
redis.call('SADD', KEYS[3], ARGV[2])
count = redis.call('HINCRBY', KEYS[1], 'shareSecrets', 1)
if count == 1 then redis.call('HSETNX', KEYS[4], 'shareSecrets', ARGV[3]) end
if count == threshold then redis.call('HSETNX', KEYS[4], 'shareSecrets:closed', ARGV[3]) end
for _, i in ipairs({1, 3, 4}) do redis.call('EXPIRE', KEYS[i], ARGV[4]) end
return {0, count}
