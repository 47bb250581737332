-- /enableFLS and /disableFLS: set runningState unless the instance is finished or already in that state.
-- The check and the write are one step, so a server finishing the last iteration meanwhile is never overwritten.
-- KEYS[1] status hash of the current instance
-- ARGV[1] wanted runningState ("0" Running for enable, "1" Disable for disable)
-- Returns {code, previous state}: code 0 = set, 1 = finished (state 2), 2 = already in the wanted state,
-- 3 = no status hash (Redis lost it; the servers republish it on their next tick).
if redis.call('EXISTS', KEYS[1]) == 0 then return {3, -1} end
local state = tonumber(redis.call('HGET', KEYS[1], 'runningState') or '0')
if state == 2 then return {1, state} end
if state == tonumber(ARGV[1]) then return {2, state} end
redis.call('HSET', KEYS[1], 'runningState', ARGV[1])
return {0, state}
