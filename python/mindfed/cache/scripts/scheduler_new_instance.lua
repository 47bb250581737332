-- /newInstance: publish the merged hyper parameters under a new instance name, then make it the job's instance.
-- Compare-and-set on the instance name, so two concurrent /newInstance calls cannot lose each other's overrides.
-- KEYS[1] the job's instance-name string, KEYS[2] hyperParams string of the new instance
-- ARGV[1] instance name the overrides were merged against, ARGV[2] new instance name,
-- ARGV[3] hyper parameters (JSON), ARGV[4] config TTL (s)
-- Returns 1 when the job now runs the new instance, 0 when the instance changed since it was read (nothing written).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[4])
return 1
