-- compute.lua: compute accounting (docs/COMPUTE.md) that the transition
-- scripts share: budget periods, charging an attempt's worker time to its
-- job and project, withdrawal past the per-job limit. LuaScript puts it
-- after common.lua and before each script's own text; it is never run alone.
--
-- Fields (the schema block in coordinator/redis_store.h):
--   project hash  job_limit_s, period_budget_s, period_s, max_concurrent_jobs,
--                 period_start_ms, period_used_s, total_used_s
--   job hash      compute_s, estimate_s, project_key, active_key
--   task hash     charged:{token}, the worker-seconds charged for the
--                 attempt that holds (or held) that fencing token

-- Writes the defaults of a project's settings that it does not have yet.
local function ensure_project(project_key, projects_key, name, job_limit_s, period_s)
  redis.call('HSETNX', project_key, 'job_limit_s', job_limit_s)
  redis.call('HSETNX', project_key, 'period_s', period_s)
  redis.call('HSETNX', project_key, 'period_budget_s', '0')
  redis.call('HSETNX', project_key, 'max_concurrent_jobs', '0')
  redis.call('SADD', projects_key, name)
end

-- Moves the project's budget period forward to the one that holds now_ms
-- (usage restarts at 0); the first period starts now. Returns its start.
local function roll_period(project_key, now_ms)
  local p = redis.call('HMGET', project_key, 'period_s', 'period_start_ms')
  local now = tonumber(now_ms)
  local start = tonumber(p[2])
  if not start then
    redis.call('HSET', project_key, 'period_start_ms', now_ms, 'period_used_s', '0')
    return now
  end
  local period_ms = tonumber(p[1]) * 1000
  if now >= start + period_ms then
    start = start + math.floor((now - start) / period_ms) * period_ms
    redis.call('HSET', project_key, 'period_start_ms', string.format('%.0f', start),
               'period_used_s', '0')
  end
  return start
end

-- Charges what an attempt reports beyond what it was already charged:
-- reported_s is the attempt's cumulative worker time, so a repeated or
-- reordered report adds nothing. A token this task never leased is not
-- charged. The job and its project are charged together. Returns the
-- worker-seconds charged now, as text.
local function charge_attempt(tkey, job_key, token, reported_s, now_ms)
  local field = 'charged:' .. token
  local before = redis.call('HGET', tkey, field)
  local reported = tonumber(reported_s)
  if not before or not reported then return '0' end
  local delta = reported - tonumber(before)
  if delta <= 0 then return '0' end
  redis.call('HSET', tkey, field, reported_s)
  redis.call('HINCRBYFLOAT', job_key, 'compute_s', delta)
  local project_key = redis.call('HGET', job_key, 'project_key')
  if project_key and redis.call('HEXISTS', project_key, 'period_s') == 1 then
    roll_period(project_key, now_ms)
    redis.call('HINCRBYFLOAT', project_key, 'period_used_s', delta)
    redis.call('HINCRBYFLOAT', project_key, 'total_used_s', delta)
  end
  return string.format('%.17g', delta)
end

-- A job still open that has used more than its project's per-job limit
-- (the limit as set now) ends WITHDRAWN: its queued tasks are cancelled and
-- its running ones told to stop at their next heartbeat. Returns true when
-- it withdrew the job.
local function withdraw_if_over(job_key, now_ms)
  local j = redis.call('HMGET', job_key, 'state', 'compute_s', 'project_key')
  if job_ended(j[1]) or not j[3] then return false end
  local limit = tonumber(redis.call('HGET', j[3], 'job_limit_s'))
  local used = tonumber(j[2] or '0')
  if not limit or used <= limit then return false end
  -- Whole seconds, unless rounding would hide that the limit was passed.
  local used_text = string.format('%.0f', used)
  if tonumber(used_text) <= limit then used_text = string.format('%.2f', used) end
  local reason = 'used ' .. used_text .. ' s of its ' .. string.format('%.14g', limit) ..
                 ' s compute limit per job; raise it with: ' ..
                 'impulse-client project set --job-limit DURATION'
  set_job_state(job_key, JOB_WITHDRAWN, now_ms, reason)
  cancel_open_tasks(job_key, now_ms, reason)
  return true
end

-- The reply of get_project and set_project: {'OK', job_limit_s,
-- period_budget_s, period_s, max_concurrent_jobs, period_start_ms,
-- period_used_s, total_used_s, active jobs}.
local function project_reply(project_key, active_key)
  local p = redis.call('HMGET', project_key, 'job_limit_s', 'period_budget_s', 'period_s',
                       'max_concurrent_jobs', 'period_start_ms', 'period_used_s', 'total_used_s')
  local reply = {'OK'}
  for i = 1, 7 do reply[#reply + 1] = p[i] or '0' end
  reply[#reply + 1] = tostring(redis.call('SCARD', active_key))
  return reply
end
