-- Adopt the job's current instance, or create it with our candidate name when there is none.
-- KEYS[1] instance-name string
-- ARGV[1] candidate instance name, ARGV[2] config TTL (s)
-- Returns the instance name now in force.
local current = redis.call('GET', KEYS[1])
if current then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return current
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]
