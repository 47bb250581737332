-- Take over the updates of a dead server (once): keep what it made durable, release what it only reserved.
-- Every update it answered SUCCEED is in its write-ahead log or its checkpoint (it logs before folding and acks
-- after), so "durable" ⊇ "acknowledged"; reservations that never reached the log were never acknowledged, and
-- their devices may upload again elsewhere.
-- KEYS[1] count hash, KEYS[2] updateModel fl_id set, KEYS[3] per-server updateModel count hash,
-- KEYS[4] per-server count_for_aggregation hash, KEYS[5] dead node's reserved set, KEYS[6] dead node's WAL hash,
-- KEYS[7] dead node's checkpoint-tag set, KEYS[8] repaired hash
-- ARGV[1] dead node_id, ARGV[2] iteration TTL (s)
-- Returns {released, kept, cluster folded count}, or {-1, 0, folded} when the node was already repaired.
local function folded_total()
  local total = 0
  for _, v in ipairs(redis.call('HVALS', KEYS[4])) do total = total + tonumber(v) end
  return total
end
if redis.call('HEXISTS', KEYS[8], ARGV[1]) == 1 then return {-1, 0, folded_total()} end
local durable = {}
local kept = 0
for _, id in ipairs(redis.call('HKEYS', KEYS[6])) do
  if not durable[id] then durable[id] = true; kept = kept + 1 end
end
for _, id in ipairs(redis.call('SMEMBERS', KEYS[7])) do
  if not durable[id] then durable[id] = true; kept = kept + 1 end
end
local released = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  if not durable[id] then
    redis.call('SREM', KEYS[2], id)
    redis.call('SREM', KEYS[5], id)
    released = released + 1
  end
end
if released > 0 then redis.call('HINCRBY', KEYS[1], 'updateModel', -released) end
redis.call('HSET', KEYS[3], ARGV[1], kept)
redis.call('HSET', KEYS[4], ARGV[1], kept)
redis.call('HSET', KEYS[8], ARGV[1], kept)
for i = 1, 8 do redis.call('EXPIRE', KEYS[i], ARGV[2]) end
return {released, kept, folded_total()}
