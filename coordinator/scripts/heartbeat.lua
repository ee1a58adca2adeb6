-- heartbeat.lua: charges a task attempt's worker time, extends its lease,
-- stores its progress and appends its events; withdraws the job once it
-- has used more than its project's per-job limit; tells the worker to stop
-- when its job has ended.
--
-- A stale attempt (token not current, or the task no longer running) is
-- still charged for the time it reports, since a worker really spent it,
-- but changes nothing else: not the task, and not the job's state (a
-- current attempt's next heartbeat withdraws the job if need be).
--
-- KEYS[1]    the task's hash
-- KEYS[2]    the leases sorted set
-- ARGV[1]    fencing token
-- ARGV[2]    now_ms
-- ARGV[3]    lease_ttl_ms
-- ARGV[4]    progress, a fraction in [0, 1]
-- ARGV[5]    sha256 of the newest checkpoint blob; '' = unchanged
-- ARGV[6]    worker-seconds the attempt has used since its lease (cumulative)
-- ARGV[7..]  serialized v1::Event to append, each as field 'pb'
--
-- Reply: {'OK', cancel ('1' | '0'), reason, withdrew ('1' | '0': this
--         heartbeat withdrew the job), worker-seconds charged now}
--        {'NOT_FOUND'}                no such task
--        {'STALE', state, token}      token not current or task not running;
--                                     only the worker time was charged
local now_ms = ARGV[2]
local t = redis.call('HMGET', KEYS[1], 'state', 'token', 'entry', 'job_key', 'events_key', 'id')
if not t[1] then return {'NOT_FOUND'} end
local charged = charge_attempt(KEYS[1], t[4], ARGV[1], ARGV[6], now_ms)
if t[1] ~= TASK_RUNNING or t[2] ~= ARGV[1] then return {'STALE', t[1], t[2]} end

redis.call('ZADD', KEYS[2], tonumber(now_ms) + tonumber(ARGV[3]), t[3])
redis.call('HSET', KEYS[1], 'progress', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'checkpoint', ARGV[5]) end
for i = 7, #ARGV do
  redis.call('XADD', t[5], 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'pb', ARGV[i])
end
emit(t[5], now_ms, EVENT_PROGRESS, {'task_id', t[6], 'progress', ARGV[4]})

local withdrew = withdraw_if_over(t[4], now_ms) and '1' or '0'
local cancel = redis.call('HGET', KEYS[1], 'cancel')
if cancel then return {'OK', '1', cancel, withdrew, charged} end
local job = redis.call('HMGET', t[4], 'state', 'reason')
if job_ended(job[1]) then return {'OK', '1', job[2] or 'the job has ended', withdrew, charged} end
return {'OK', '0', '', withdrew, charged}
