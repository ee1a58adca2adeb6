-- heartbeat.lua: extends a running task's lease, stores its progress and
-- appends its events; tells the worker to stop when its job has ended.
--
-- KEYS[1]    the task's hash
-- KEYS[2]    the leases sorted set
-- ARGV[1]    fencing token
-- ARGV[2]    now_ms
-- ARGV[3]    lease_ttl_ms
-- ARGV[4]    progress, a fraction in [0, 1]
-- ARGV[5]    sha256 of the newest checkpoint blob; '' = unchanged
-- ARGV[6..]  serialized v1::Event to append, each as field 'pb'
--
-- Reply: {'OK', cancel ('1' | '0'), reason}
--        {'NOT_FOUND'}                no such task
--        {'STALE', state, token}      token not current or task not running;
--                                     nothing was written
local now_ms = ARGV[2]
local t = redis.call('HMGET', KEYS[1], 'state', 'token', 'entry', 'job_key', 'events_key', 'id',
                     'cancel')
if not t[1] then return {'NOT_FOUND'} end
if t[1] ~= TASK_RUNNING or t[2] ~= ARGV[1] then return {'STALE', t[1], t[2]} end

redis.call('ZADD', KEYS[2], tonumber(now_ms) + tonumber(ARGV[3]), t[3])
redis.call('HSET', KEYS[1], 'progress', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'checkpoint', ARGV[5]) end
for i = 6, #ARGV do
  redis.call('XADD', t[5], 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'pb', ARGV[i])
end
emit(t[5], now_ms, EVENT_PROGRESS, {'task_id', t[6], 'progress', ARGV[4]})

if t[7] then return {'OK', '1', t[7]} end
local job = redis.call('HMGET', t[4], 'state', 'reason')
if job_ended(job[1]) then return {'OK', '1', job[2] or 'the job has ended'} end
return {'OK', '0', ''}
