-- Counts one event in one subject's fixed window, atomically.
-- KEYS[1]: the window's counter.
-- ARGV: the limit; milliseconds a new counter is kept; 1 to count even at the limit, 0 to
-- refuse an event at the limit without counting it.
-- Returns {the window's count after the call, 1 if the event was counted else 0}.
local limit = tonumber(ARGV[1])
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= limit and ARGV[3] ~= '1' then
  return {n, 0}
end
n = redis.call('INCR', KEYS[1])
if n == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return {n, 1}
