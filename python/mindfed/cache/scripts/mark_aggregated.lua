-- Count updates as folded into this server's accumulator (MindSpore's hidden count_for_aggregation round).
-- KEYS[1] per-server count_for_aggregation hash
-- ARGV[1] node_id, ARGV[2] iteration TTL (s), ARGV[3] how many updates (absent: 1)
-- Returns the cluster-wide number of folded updates (sum over servers).
redis.call('HINCRBY', KEYS[1], ARGV[1], tonumber(ARGV[3] or 1))
redis.call('EXPIRE', KEYS[1], ARGV[2])
local total = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do total = total + tonumber(v) end
return total
