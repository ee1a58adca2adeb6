-- complete_task.lua: ends a task's attempt. Success stores the output,
-- queues the dependents whose last dependency this was and ends the job
-- with its last task; failure fails the job and cancels its other tasks.
-- When the job ended meanwhile the task is just recorded CANCELLED. The
-- attempt's worker time is charged as heartbeat.lua does (a stale attempt
-- too), and a job still open past its per-job limit is then withdrawn: a
-- task that succeeded keeps its output, the rest are cancelled.
--
-- KEYS[1]  the task's hash
-- KEYS[2]  the leases sorted set
-- ARGV[1]  fencing token
-- ARGV[2]  now_ms
-- ARGV[3]  '1' succeeded, '0' failed
-- ARGV[4]  error, one line (failure)
-- ARGV[5]  serialized v1::TaskOutput (success)
-- ARGV[6]  worker-seconds the attempt used in all (cumulative)
--
-- Reply: {'OK', job_id, kind, task state, job state, started_ms, withdrew
--         ('1' | '0'), the job's compute_s, the job's estimate_s,
--         worker-seconds charged now}
--        {'NOT_FOUND'}                no such task
--        {'STALE', state, token}      token not current or task not running;
--                                     only the worker time was charged
local now_ms = ARGV[2]
local tkey = KEYS[1]
local t = redis.call('HMGET', tkey, 'state', 'token', 'job_key', 'job', 'kind', 'started_ms',
                     'children', 'id', 'cancel')
if not t[1] then return {'NOT_FOUND'} end
local charged = charge_attempt(tkey, t[3], ARGV[1], ARGV[6], now_ms)
if t[1] ~= TASK_RUNNING or t[2] ~= ARGV[1] then return {'STALE', t[1], t[2]} end
local job_key = t[3]

release_lease(KEYS[2], tkey)
local job_state = redis.call('HGET', job_key, 'state')
local task_state
if job_ended(job_state) or t[9] then
  task_state = TASK_CANCELLED
  set_task_state(tkey, TASK_CANCELLED, now_ms, t[9] or 'the job had already ended')
elseif ARGV[3] == '1' then
  task_state = TASK_SUCCEEDED
  redis.call('HSET', tkey, 'output', ARGV[5], 'progress', '1')
  set_task_state(tkey, TASK_SUCCEEDED, now_ms, '')
  for _, child in ipairs(split_lines(t[7])) do
    local pending = redis.call('HINCRBY', child, 'pending', -1)
    local c = redis.call('HMGET', child, 'state', 'queue_key', 'entry')
    if pending <= 0 and c[1] == TASK_BLOCKED then
      redis.call('HSET', child, 'enq_ms', now_ms)
      redis.call('ZADD', c[2], 'NX', now_ms, c[3])
      set_task_state(child, TASK_QUEUED, now_ms, '')
    end
  end
  if redis.call('HINCRBY', job_key, 'left', -1) <= 0 then
    job_state = JOB_SUCCEEDED
    set_job_state(job_key, JOB_SUCCEEDED, now_ms, nil)
  end
else
  task_state = TASK_FAILED
  redis.call('HSET', tkey, 'error', ARGV[4])
  set_task_state(tkey, TASK_FAILED, now_ms, ARGV[4])
  job_state = JOB_FAILED
  local reason = 'task ' .. t[8] .. ' failed: ' .. ARGV[4]
  set_job_state(job_key, JOB_FAILED, now_ms, reason)
  cancel_open_tasks(job_key, now_ms, reason)
end
local withdrew = withdraw_if_over(job_key, now_ms)
if withdrew then job_state = JOB_WITHDRAWN end
local j = redis.call('HMGET', job_key, 'compute_s', 'estimate_s')
return {'OK', t[4], t[5], task_state, job_state, t[6] or '0', withdrew and '1' or '0',
        j[1] or '0', j[2] or '0', charged}
