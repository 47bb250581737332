-- Move the instance from iteration ARGV[1] to ARGV[1] + 1 exactly once (compare-and-set; MindSpore has no CAS).
-- KEYS[1] status hash
-- ARGV[1] expected current iteration, ARGV[2] "1" success / "0" failure, ARGV[3] reason, ARGV[4] fl_iteration_num
-- Returns 1 if this call moved the iteration, 0 if the iteration had already moved (or the hash is gone).
local current = tonumber(redis.call('HGET', KEYS[1], 'iterationNum') or '-1')
if current ~= tonumber(ARGV[1]) then return 0 end
local next_iteration = current + 1
redis.call('HSET', KEYS[1], 'iterationNum', next_iteration,
           'lastIterationSuccess', ARGV[2], 'lastIterationResult', ARGV[3])
if next_iteration > tonumber(ARGV[4]) then redis.call('HSET', KEYS[1], 'runningState', '2') end
return 1
