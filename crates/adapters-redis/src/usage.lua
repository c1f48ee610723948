-- Adds ARGV[1] to the current hourly bucket of a key's trailing window and returns the window's
-- count before and after, atomically, so exactly one caller sees a threshold crossed.
-- KEYS: the window's hourly buckets, oldest first, the current one last.
-- ARGV: count, seconds the current bucket is kept.
local before = 0
for _, v in ipairs(redis.call('MGET', unpack(KEYS))) do
  if v then
    before = before + tonumber(v)
  end
end
local n = tonumber(ARGV[1])
redis.call('INCRBY', KEYS[#KEYS], n)
redis.call('EXPIRE', KEYS[#KEYS], ARGV[2])
return {before, before + n}
