-- requeue_expired.lua: handles leases that expired at or before now_ms.
-- A task of an ended job is released (CANCELLED); one with attempts left
-- goes back to its queue at its first enqueue time, so it keeps its place;
-- otherwise the task and its job fail.
--
-- KEYS[1]  the leases sorted set
-- ARGV[1]  key prefix
-- ARGV[2]  now_ms
-- ARGV[3]  the most leases to handle in this call
--
-- Reply: {handled, project, task_id, outcome, project, task_id, outcome, ...}
--        handled: the expired leases removed; fewer than ARGV[3] means none
--        is left. One triple per task that was running, outcome
--        'REQUEUED' | 'FAILED' | 'RELEASED'.
local prefix, now_ms = ARGV[1], ARGV[2]
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms, 'LIMIT', 0, ARGV[3])
local reply = {tostring(#expired)}
for _, entry in ipairs(expired) do
  local project, task_id = split_entry(entry)
  local tkey = task_key(prefix, project, task_id)
  local t = redis.call('HMGET', tkey, 'state', 'job_key', 'attempt', 'max_attempts', 'worker',
                       'queue_key', 'enq_ms', 'cancel')
  local outcome
  if t[1] == TASK_RUNNING then
    release_lease(KEYS[1], tkey)
    local attempt, max_attempts = tonumber(t[3]), tonumber(t[4])
    local worker = t[5] or '?'
    if job_ended(redis.call('HGET', t[2], 'state')) or t[8] then
      outcome = 'RELEASED'
      set_task_state(tkey, TASK_CANCELLED, now_ms, 'lease expired on worker ' .. worker ..
                     ' after the job ended')
    elseif attempt < max_attempts then
      outcome = 'REQUEUED'
      redis.call('HSET', tkey, 'progress', '0')
      redis.call('ZADD', t[6], t[7], entry)
      set_task_state(tkey, TASK_QUEUED, now_ms, 'lease expired on worker ' .. worker ..
                     ', attempt ' .. attempt .. ' requeued')
    else
      outcome = 'FAILED'
      local why = 'lease expired on worker ' .. worker .. ' after attempt ' .. attempt ..
                  ' of ' .. max_attempts
      redis.call('HSET', tkey, 'error', why)
      set_task_state(tkey, TASK_FAILED, now_ms, why)
      local reason = 'task ' .. task_id .. ' failed: ' .. why
      set_job_state(t[2], JOB_FAILED, now_ms, reason)
      cancel_open_tasks(t[2], now_ms, reason)
    end
  else
    -- A lease left behind by a task that already moved on: just drop it.
    redis.call('ZREM', KEYS[1], entry)
  end
  if outcome then
    reply[#reply + 1] = project
    reply[#reply + 1] = task_id
    reply[#reply + 1] = outcome
  end
end
return reply
