-- get_project.lua: a project's settings and usage, after moving its budget
-- period forward to now_ms (so usage of a period that has ended reads 0).
--
-- KEYS[1]  the project's hash
-- KEYS[2]  the project's active jobs set
-- ARGV[1]  now_ms
--
-- Reply: {'OK', job_limit_s, period_budget_s, period_s, max_concurrent_jobs,
--         period_start_ms, period_used_s, total_used_s, active jobs}
--        {'NONE'}                     the project has no settings yet
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NONE'} end
roll_period(KEYS[1], ARGV[1])
return project_reply(KEYS[1], KEYS[2])
