-- Undo one reservation of update_model.lua that did not reach enough replicas in time (distributed_cache.replica_acks):
-- the server neither folds nor acknowledges it, and takes it back so that a failover to a replica without it and a
-- master that keeps it agree; the device may upload again. Only a reservation this server still holds is undone.
-- KEYS[1] count hash, KEYS[2] updateModel fl_id set, KEYS[3] per-server updateModel count hash,
-- KEYS[4] this server's reserved fl_id set, KEYS[5] this server's write-ahead log
-- ARGV[1] fl_id, ARGV[2] node_id
-- Returns 1 when the reservation was undone, 0 when this server held none for fl_id.
if redis.call('SREM', KEYS[4], ARGV[1]) == 0 then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('HINCRBY', KEYS[1], 'updateModel', -1)
redis.call('HINCRBY', KEYS[3], ARGV[2], -1)
return 1
