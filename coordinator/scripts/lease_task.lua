-- lease_task.lua: leases the oldest runnable task of the first queue that
-- has one. Entries whose task is no longer QUEUED are stale (cancelled,
-- already leased) and are dropped on the way.
--
-- KEYS[1]    the leases sorted set
-- KEYS[2]    the fencing-token counter
-- KEYS[3]    the worker's hash
-- KEYS[4]    the workers sorted set (a lease request proves the worker alive)
-- KEYS[5..]  the queues to try, in order of preference
-- ARGV[1]    key prefix
-- ARGV[2]    worker id
-- ARGV[3]    now_ms
-- ARGV[4]    lease_ttl_ms
--
-- Reply: {'EMPTY'}                    nothing runnable
--        {'OK', project, task_id, fencing_token, attempt, serialized
--         v1::TaskSpec, checkpoint sha256 ('' = none), serialized
--         v1::TaskOutput of each dependency...}
local prefix, worker_id, now_ms, ttl_ms = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
-- Only a registered worker is refreshed: XX never adds an unknown id.
redis.call('ZADD', KEYS[4], 'XX', now_ms, worker_id)

for q = 5, #KEYS do
  while true do
    local head = redis.call('ZPOPMIN', KEYS[q])
    if #head == 0 then break end
    local entry = head[1]
    local project, task_id = split_entry(entry)
    local tkey = task_key(prefix, project, task_id)
    local t = redis.call('HMGET', tkey, 'state', 'job_key', 'attempt', 'deps', 'spec', 'checkpoint')
    if t[1] == TASK_QUEUED then
      local job_state = redis.call('HGET', t[2], 'state')
      if job_ended(job_state) then
        set_task_state(tkey, TASK_CANCELLED, now_ms, 'the job had already ended')
      else
        local token = redis.call('INCR', KEYS[2])
        local attempt = tonumber(t[3]) + 1
        redis.call('HSET', tkey, 'attempt', attempt, 'worker', worker_id, 'worker_key', KEYS[3],
                   'started_ms', now_ms, 'token', token, 'progress', '0',
                   'charged:' .. token, '0')
        redis.call('HDEL', tkey, 'cancel')
        redis.call('ZADD', KEYS[1], tonumber(now_ms) + tonumber(ttl_ms), entry)
        redis.call('HSET', KEYS[3], 'current_task', task_id)
        set_task_state(tkey, TASK_RUNNING, now_ms,
                       'leased by worker ' .. worker_id .. ', attempt ' .. attempt)
        if job_state == JOB_QUEUED then set_job_state(t[2], JOB_RUNNING, now_ms, nil) end
        local reply = {'OK', project, task_id, tostring(token), tostring(attempt), t[5], t[6] or ''}
        for _, dep in ipairs(split_lines(t[4])) do
          reply[#reply + 1] = redis.call('HGET', dep, 'output') or ''
        end
        return reply
      end
    end
  end
end
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('HSET', KEYS[3], 'current_task', '') end
return {'EMPTY'}
