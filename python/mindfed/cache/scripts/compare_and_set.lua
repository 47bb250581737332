-- Set a string key to a new value only if it still holds the expected one (e.g. renewing a lease, or releasing it).
-- KEYS[1] the key
-- ARGV[1] expected value, ARGV[2] new value, ARGV[3] TTL (s)
-- Returns 1 if the key was set, 0 if it held something else.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
