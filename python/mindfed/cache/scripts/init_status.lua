-- Create the instance status hash unless it exists; return its content either way.
-- KEYS[1] status hash
-- ARGV[1] iteration, ARGV[2] running state, ARGV[3] config TTL (s)
-- Returns the hash as a flat {field, value, ...} list.
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'iterationNum', ARGV[1], 'runningState', ARGV[2],
             'lastIterationSuccess', '1', 'lastIterationResult', '')
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return redis.call('HGETALL', KEYS[1])
