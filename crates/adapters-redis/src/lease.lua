-- Takes up to ARGV[3] tokens from one key's token bucket, atomically, on Redis's clock.
-- KEYS[1]: the bucket (hash: tokens, ts in microseconds). A missing bucket is full.
-- ARGV: per_second, burst, requested.
-- Returns {granted, tokens left in millionths, microseconds until full, microseconds until one token}.
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local stored = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(stored[1])
local ts = tonumber(stored[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000000)
  ts = now
end
local granted = math.max(0, math.min(want, math.floor(tokens)))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
local full_us = math.ceil((burst - tokens) * 1000000 / rate)
-- Once full, a missing bucket means the same thing: let it go.
redis.call('PEXPIRE', KEYS[1], math.ceil(full_us / 1000) + 1000)
local wait_us = 0
if granted == 0 then
  wait_us = math.ceil((1 - tokens) * 1000000 / rate)
end
return {granted, math.floor(tokens * 1000000), full_us, wait_us}
