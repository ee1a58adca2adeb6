-- estimate_sample.lua: folds one finished task's log(actual / estimated)
-- into the running mean for its cost table and stage (the first sample
-- sets it), so concurrent completions never lose each other's update.
--
-- KEYS[1]  the estimate scales hash
-- ARGV[1]  the field: "<stage>|<cost table source>"
-- ARGV[2]  log(actual / estimated)
-- ARGV[3]  the sample's weight, in (0, 1]
--
-- Reply: the new mean, as a string
local sample = tonumber(ARGV[2])
local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
local mean = sample
if old then mean = old + tonumber(ARGV[3]) * (sample - old) end
local text = string.format('%.17g', mean)
redis.call('HSET', KEYS[1], ARGV[1], text)
return text
