-- Checks and commits the hits of one descriptor against all of its limits, atomically.
--
-- KEYS[i]   storage key of limit i (all keys share one hash tag, so one Cluster slot)
-- ARGV[1]   hits to add (at least 1)
-- ARGV[2]   member prefix unique to this call; sliding-log members are PREFIX.N
-- ARGV[3 + 4(i-1) ...]  for limit i: algorithm (1 = sliding log, 2 = sliding counter),
--           window in microseconds, requests allowed per window, shadow (1) or enforced (0)
--
-- Returns {allowed, within_1, remaining_1, reset_us_1, within_2, ...}. The hits are committed
-- to every limit with room only when every enforced limit has room (allowed = 1). Times come
-- from the Redis server clock, so service instances with skewed clocks still agree.
-- The arithmetic matches src/store/algorithm.rs step for step.

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local hits = tonumber(ARGV[1])
local member = ARGV[2]

local limits = {}
local allowed = true
for i = 1, #KEYS do
  local base = 2 + (i - 1) * 4
  local limit = {
    key = KEYS[i],
    algorithm = tonumber(ARGV[base + 1]),
    window = tonumber(ARGV[base + 2]),
    requests = tonumber(ARGV[base + 3]),
    shadow = ARGV[base + 4] == '1',
  }
  if limit.algorithm == 1 then
    redis.call('ZREMRANGEBYSCORE', limit.key, '-inf', now - limit.window)
    limit.count = redis.call('ZCARD', limit.key)
    limit.within = limit.count + hits <= limit.requests
  else
    local start = now - now % limit.window
    local stored = redis.call('HMGET', limit.key, 's', 'c', 'p')
    local stored_start = tonumber(stored[1])
    local current, previous = 0, 0
    if stored_start == start then
      current, previous = tonumber(stored[2]) or 0, tonumber(stored[3]) or 0
    elseif stored_start ~= nil and stored_start + limit.window == start then
      previous = tonumber(stored[2]) or 0
    end
    limit.start, limit.current, limit.previous = start, current, previous
    local elapsed = now - start
    local estimate = previous * ((limit.window - elapsed) / limit.window) + current
    limit.within = estimate + hits <= limit.requests
  end
  if not limit.within and not limit.shadow then
    allowed = false
  end
  limits[i] = limit
end

-- Time until a sliding log drops to target entries.
local function log_wait_until(limit, count, target)
  if count <= target then
    return 0
  end
  local index = count - target - 1
  local entry = redis.call('ZRANGE', limit.key, index, index, 'WITHSCORES')
  local expiry = tonumber(entry[2]) + limit.window
  if expiry <= now then
    return 0
  end
  return expiry - now
end

-- Time until a sliding counter's estimate falls to target or below.
local function counter_wait_until(limit, target)
  local window = limit.window
  local elapsed = now - limit.start
  local current, previous = limit.current, limit.previous
  if previous * ((window - elapsed) / window) + current <= target then
    return 0
  end
  if current <= target then
    local needed = math.ceil(window * (1 - (target - current) / previous))
    return math.max(needed - elapsed, 0)
  end
  local needed = math.ceil(window * (1 - target / current))
  return math.max(window - elapsed + needed, 0)
end

local reply = {allowed and 1 or 0}
for i = 1, #limits do
  local limit = limits[i]
  local commit = allowed and limit.within
  local remaining, reset
  if limit.algorithm == 1 then
    local count = limit.count
    if commit then
      local args = {}
      for n = 1, hits do
        args[#args + 1] = now
        args[#args + 1] = member .. '.' .. n
        if #args >= 1000 then
          redis.call('ZADD', limit.key, unpack(args))
          args = {}
        end
      end
      if #args > 0 then
        redis.call('ZADD', limit.key, unpack(args))
      end
      redis.call('PEXPIRE', limit.key, math.ceil(limit.window / 1000) + 1)
      count = count + hits
    end
    remaining = math.max(limit.requests - count, 0)
    if limit.within then
      reset = log_wait_until(limit, count, math.max(count - 1, 0))
    elseif hits > limit.requests then
      reset = limit.window
    else
      reset = log_wait_until(limit, count, limit.requests - hits)
    end
  else
    if commit then
      limit.current = limit.current + hits
      redis.call('HSET', limit.key, 's', limit.start, 'c', limit.current, 'p', limit.previous)
      redis.call('PEXPIRE', limit.key, math.ceil((limit.start + 2 * limit.window - now) / 1000) + 1)
    end
    local elapsed = now - limit.start
    local estimate = limit.previous * ((limit.window - elapsed) / limit.window) + limit.current
    remaining = math.max(math.floor(limit.requests - estimate), 0)
    if limit.within then
      if estimate <= 0 then
        reset = 0
      else
        reset = counter_wait_until(limit, math.max(limit.requests - remaining - 1, 0))
      end
    elseif hits > limit.requests then
      reset = limit.window
    else
      reset = counter_wait_until(limit, limit.requests - hits)
    end
  end
  reply[#reply + 1] = limit.within and 1 or 0
  reply[#reply + 1] = remaining
  reply[#reply + 1] = reset
end
return reply
