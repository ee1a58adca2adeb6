-- common.lua: the constants and helpers every script shares. LuaScript (in
-- coordinator/redis_connection.cc) puts this file before each script's own
-- text, since Redis Lua has no include; it is never run alone.
--
-- Enum values mirror proto/impulse/v1/job.proto. Hash fields and key
-- patterns are those of the schema block in coordinator/redis_store.h.

local TASK_BLOCKED, TASK_QUEUED, TASK_RUNNING = '1', '2', '3'
local TASK_SUCCEEDED, TASK_FAILED, TASK_CANCELLED = '4', '5', '6'
local JOB_QUEUED, JOB_RUNNING, JOB_SUCCEEDED = '1', '2', '3'
local JOB_FAILED, JOB_CANCELLED, JOB_WITHDRAWN = '4', '5', '6'
local EVENT_STATE, EVENT_PROGRESS = '1', '2'
local EVENTS_MAXLEN = '10000'

local function job_ended(state)
  return state == JOB_SUCCEEDED or state == JOB_FAILED or state == JOB_CANCELLED or
         state == JOB_WITHDRAWN
end

-- The one key pattern scripts build: RedisKeys::Task(project, task_id).
local function task_key(prefix, project, task_id)
  return prefix .. ':' .. project .. ':task:' .. task_id
end

-- "project/task_id" (RedisKeys::TaskEntry) -> project, task_id. Project
-- names never hold '/', task ids may.
local function split_entry(entry)
  local slash = string.find(entry, '/', 1, true)
  return string.sub(entry, 1, slash - 1), string.sub(entry, slash + 1)
end

-- A '\n'-joined list field (false or '' when empty) as a table.
local function split_lines(text)
  local out = {}
  if text then
    for line in string.gmatch(text, '[^\n]+') do out[#out + 1] = line end
  end
  return out
end

-- Appends one event to a job's stream. Scripts cannot write protobuf, so
-- their events are plain fields (RedisStore decodes both forms).
-- fields: a flat list {name, value, name, value, ...}.
local function emit(events_key, now_ms, kind, fields)
  local args = {'XADD', events_key, 'MAXLEN', '~', EVENTS_MAXLEN, '*',
                'kind', kind, 'time_ms', now_ms}
  for i = 1, #fields do args[#args + 1] = fields[i] end
  redis.call(unpack(args))
end

-- Sets a task's state (and finished_ms when it ends) and records it.
local function set_task_state(tkey, state, now_ms, message)
  local t = redis.call('HMGET', tkey, 'id', 'events_key')
  redis.call('HSET', tkey, 'state', state)
  if state == TASK_SUCCEEDED or state == TASK_FAILED or state == TASK_CANCELLED then
    redis.call('HSET', tkey, 'finished_ms', now_ms)
  end
  emit(t[2], now_ms, EVENT_STATE, {'task_id', t[1], 'task_state', state, 'message', message or ''})
end

-- Sets a job's state (and reason, when given) and records it. An ended
-- job leaves its project's active set (the concurrent-job limit).
local function set_job_state(job_key, state, now_ms, reason)
  redis.call('HSET', job_key, 'state', state, 'updated_ms', now_ms)
  if reason then redis.call('HSET', job_key, 'reason', reason) end
  local j = redis.call('HMGET', job_key, 'events_key', 'active_key', 'id')
  if j[2] and job_ended(state) then redis.call('SREM', j[2], j[3]) end
  emit(j[1], now_ms, EVENT_STATE, {'job_state', state, 'message', reason or ''})
end

-- After a job ended: its queued and blocked tasks are cancelled and leave
-- their queues; running ones keep their lease but carry the cancel flag
-- that their next heartbeat reports.
local function cancel_open_tasks(job_key, now_ms, reason)
  for _, tkey in ipairs(split_lines(redis.call('HGET', job_key, 'task_keys'))) do
    local t = redis.call('HMGET', tkey, 'state', 'queue_key', 'entry')
    if t[1] == TASK_QUEUED or t[1] == TASK_BLOCKED then
      redis.call('ZREM', t[2], t[3])
      set_task_state(tkey, TASK_CANCELLED, now_ms, reason)
    elseif t[1] == TASK_RUNNING then
      redis.call('HSET', tkey, 'cancel', reason)
    end
  end
end

-- Drops a task's lease and clears its worker's current task.
local function release_lease(leases_key, tkey)
  local t = redis.call('HMGET', tkey, 'entry', 'worker_key', 'id')
  redis.call('ZREM', leases_key, t[1])
  if t[2] and redis.call('HGET', t[2], 'current_task') == t[3] then
    redis.call('HDEL', t[2], 'current_task')
  end
end
