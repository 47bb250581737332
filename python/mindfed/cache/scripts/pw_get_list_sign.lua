-- /getListSign of PW_ENCRYPT under pki_verify (spec §7.2): once P devices pushed their list signatures, each that
-- pushed one may read them all; each device counts once.
-- KEYS[1] count hash, KEYS[2] list signatures hash, KEYS[3] updateModel set, KEYS[4] getListSign set,
-- KEYS[5] timer hash
-- ARGV[1] P (signatures needed), ARGV[2] fl_id, ARGV[3] getListSign threshold, ARGV[4] now (ms),
-- ARGV[5] iteration TTL (s)
-- Returns {code, uploaded}: code 0 may read, 1 fewer than P signatures, 3 fl_id pushed none;
-- uploaded = 1 when fl_id is in the updateModel set.
if redis.call('HLEN', KEYS[2]) < tonumber(ARGV[1]) then return {1, 0} end
local uploaded = redis.call('SISMEMBER', KEYS[3], ARGV[2])
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 then return {3, uploaded} end
if redis.call('SADD', KEYS[4], ARGV[2]) == 1 then
  local count = redis.call('HINCRBY', KEYS[1], 'getListSign', 1)
  if count == 1 then redis.call('HSETNX', KEYS[5], 'getListSign', ARGV[4]) end
  if count == tonumber(ARGV[3]) then redis.call('HSETNX', KEYS[5], 'getListSign:closed', ARGV[4]) end
  for _, i in ipairs({1, 4, 5}) do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
end
return {0, uploaded}
