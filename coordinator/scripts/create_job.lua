-- create_job.lua: admits a new job against its project's limits, then
-- writes it and its task graph in one step and queues the tasks with no
-- pending dependency. The caller (RedisStore::CreateJob) has checked the
-- graph and worked out each task's first state.
--
-- Admission (docs/COMPUTE.md): refused when the project already has
-- max_concurrent_jobs QUEUED or RUNNING, or when its budget period's usage
-- plus this job's estimate exceeds period_budget_s. A job with nothing
-- left to run (all reused) is always admitted.
--
-- KEYS[1]       the job's hash
-- KEYS[2]       the project's jobs sorted set
-- KEYS[3]       the job's event stream
-- KEYS[4]       the project's hash (settings and usage)
-- KEYS[5]       the project's active jobs set
-- KEYS[6]       the set of project names
-- KEYS[6+i]     task i's hash, for i = 1..n, n = (#KEYS - 6) / 2
-- KEYS[6+n+i]   the queue of task i's kind
-- ARGV[1]       project
-- ARGV[2]       job id
-- ARGV[3]       now_ms
-- ARGV[4]       serialized v1::Job, without tasks and results
-- ARGV[5]       the job's state: QUEUED, or SUCCEEDED when no task is left to run
-- ARGV[6]       tasks not yet SUCCEEDED
-- ARGV[7]       the job's estimated worker-seconds
-- ARGV[8]       default job_limit_s, for a project without settings
-- ARGV[9]       default period_s, likewise
-- ARGV[10+9(i-1)..] task i, 9 values: id, kind, state (BLOCKED | QUEUED |
--               SUCCEEDED), max_attempts, pending dependency count, child
--               task keys ('\n'-joined), dependency task keys ('\n'-joined),
--               serialized v1::TaskSpec, serialized v1::TaskOutput (reused
--               output of a SUCCEEDED task, else '')
--
-- Reply: {'OK'}
--        {'JOB_EXISTS'}
--        {'TASK_EXISTS', task_id}     nothing was written
--        {'TOO_MANY', active, max}    at the concurrent-job limit
--        {'OVER_BUDGET', used_s, budget_s, period end ms}
--                                     nothing of the job was written
local project, job_id, now_ms = ARGV[1], ARGV[2], ARGV[3]
local n = (#KEYS - 6) / 2
local T = 10  -- ARGV index of the first task's values

if redis.call('EXISTS', KEYS[1]) == 1 then return {'JOB_EXISTS'} end
for i = 1, n do
  if redis.call('EXISTS', KEYS[6 + i]) == 1 then return {'TASK_EXISTS', ARGV[T + 9 * (i - 1)]} end
end

ensure_project(KEYS[4], KEYS[6], project, ARGV[8], ARGV[9])
local period_start = roll_period(KEYS[4], now_ms)
if ARGV[5] ~= JOB_SUCCEEDED then
  local p = redis.call('HMGET', KEYS[4], 'max_concurrent_jobs', 'period_budget_s',
                       'period_used_s', 'period_s')
  local max_jobs = tonumber(p[1]) or 0
  local active = redis.call('SCARD', KEYS[5])
  if max_jobs > 0 and active >= max_jobs then
    return {'TOO_MANY', tostring(active), p[1]}
  end
  local budget, used = tonumber(p[2]) or 0, tonumber(p[3]) or 0
  if budget > 0 and (used >= budget or used + tonumber(ARGV[7]) > budget) then
    return {'OVER_BUDGET', p[3], p[2],
            string.format('%.0f', period_start + tonumber(p[4]) * 1000)}
  end
end

local task_keys = {}
for i = 1, n do task_keys[i] = KEYS[6 + i] end
redis.call('HSET', KEYS[1], 'id', job_id, 'pb', ARGV[4], 'state', JOB_QUEUED, 'reason', '',
           'created_ms', now_ms, 'updated_ms', now_ms, 'left', ARGV[6],
           'task_keys', table.concat(task_keys, '\n'), 'events_key', KEYS[3],
           'compute_s', '0', 'estimate_s', ARGV[7], 'project_key', KEYS[4],
           'active_key', KEYS[5])
redis.call('ZADD', KEYS[2], now_ms, job_id)
redis.call('SADD', KEYS[5], job_id)
emit(KEYS[3], now_ms, EVENT_STATE, {'job_state', JOB_QUEUED, 'message', 'submitted'})

for i = 1, n do
  local a = T + 9 * (i - 1)
  local tkey, queue_key = KEYS[6 + i], KEYS[6 + n + i]
  local task_id, state = ARGV[a], ARGV[a + 2]
  local entry = project .. '/' .. task_id
  redis.call('HSET', tkey, 'id', task_id, 'project', project, 'job', job_id, 'kind', ARGV[a + 1],
             'state', state, 'attempt', '0', 'max_attempts', ARGV[a + 3], 'pending', ARGV[a + 4],
             'children', ARGV[a + 5], 'deps', ARGV[a + 6], 'spec', ARGV[a + 7],
             'output', ARGV[a + 8], 'job_key', KEYS[1], 'events_key', KEYS[3],
             'queue_key', queue_key, 'entry', entry, 'token', '0', 'progress', '0',
             'enq_ms', now_ms)
  if state == TASK_QUEUED then
    redis.call('ZADD', queue_key, now_ms, entry)
  elseif state == TASK_SUCCEEDED then
    redis.call('HSET', tkey, 'progress', '1', 'finished_ms', now_ms)
  end
end

if ARGV[5] == JOB_SUCCEEDED then
  set_job_state(KEYS[1], JOB_SUCCEEDED, now_ms, nil)
end
return {'OK'}
