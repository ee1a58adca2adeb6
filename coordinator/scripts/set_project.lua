-- set_project.lua: replaces a project's settings (the caller has checked
-- them and filled in defaults). Usage is kept; the budget period keeps its
-- start and rolls with the new length, so shortening it may end it now.
--
-- KEYS[1]  the project's hash
-- KEYS[2]  the project's active jobs set
-- KEYS[3]  the set of project names
-- ARGV[1]  project name
-- ARGV[2]  now_ms
-- ARGV[3]  job_limit_s
-- ARGV[4]  period_budget_s (0 = unlimited)
-- ARGV[5]  period_s
-- ARGV[6]  max_concurrent_jobs (0 = unlimited)
--
-- Reply: as get_project.lua's {'OK', ...}
redis.call('HSET', KEYS[1], 'job_limit_s', ARGV[3], 'period_budget_s', ARGV[4],
           'period_s', ARGV[5], 'max_concurrent_jobs', ARGV[6])
redis.call('SADD', KEYS[3], ARGV[1])
roll_period(KEYS[1], ARGV[2])
return project_reply(KEYS[1], KEYS[2])
