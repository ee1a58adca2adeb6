-- cancel_job.lua: cancels a job that has not ended. Queued and blocked
-- tasks are cancelled at once; running ones are flagged, and learn it at
-- their next heartbeat.
--
-- KEYS[1]  the job's hash
-- ARGV[1]  now_ms
-- ARGV[2]  reason
--
-- Reply: {'OK'}
--        {'NOT_FOUND'}
--        {'ENDED', state}             the job had already ended
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'NOT_FOUND'} end
if job_ended(state) then return {'ENDED', state} end
set_job_state(KEYS[1], JOB_CANCELLED, ARGV[1], ARGV[2])
cancel_open_tasks(KEYS[1], ARGV[1], ARGV[2])
return {'OK'}
