-- Upsert ad clicks into packed contexts (see codec.go for the layout), all
-- the keys of one write in one call: the script's fixed cost in Redis (about
-- as much as its GET and SET together) is paid once per write, not per click.
-- KEYS[i] a context key; ARGV[i] its click packed as a context whose first
-- seen equals its click time; ARGV[#KEYS + 1] ttl in milliseconds. On Redis
-- Cluster the caller passes keys of one hash slot per call.
--
-- The merge is commutative, associative and idempotent, so duplicates and
-- out-of-order deliveries (Meta retries, replays) converge to one state:
--   * the latest click wins; on equal times the greater body wins bytewise,
--     so the outcome does not depend on arrival order;
--   * first seen is the minimum of all times;
--   * expiry: the key lives ttl after the most recent *recording* of its
--     latest click (SET PX on a click at least as new as the stored one, KEEPTTL
--     otherwise). It is counted from when we record, not from the click time,
--     because replays of old captures must still store.
-- Returns the number of keys changed.
local ttl = ARGV[#KEYS + 1]

local function u48(s, i)
  local a, b, c, d, e, f = string.byte(s, i, i + 5)
  return ((((a * 256 + b) * 256 + c) * 256 + d) * 256 + e) * 256 + f
end

-- greater compares byte strings without Lua's locale-dependent '<'.
local function greater(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end

local function upsert(key, new)
  local old = redis.call('GET', key)
  if not old or #old < 13 or string.byte(old, 1) ~= string.byte(new, 1) then
    -- absent, or a format this script does not know: the new click replaces it
    redis.call('SET', key, new, 'PX', ttl)
    return 1
  end
  local nl, ol = u48(new, 2), u48(old, 2)
  local nb, ob = string.sub(new, 14), string.sub(old, 14)
  local wins = nl > ol or (nl == ol and nb ~= ob and greater(nb, ob))
  local first = string.sub(old, 8, 13)
  if u48(new, 8) < u48(old, 8) then first = string.sub(new, 8, 13) end

  local v
  if wins then
    v = string.sub(new, 1, 7) .. first .. nb
  else
    v = string.sub(old, 1, 7) .. first .. ob
  end
  if nl >= ol then
    if v == old then
      redis.call('PEXPIRE', key, ttl)
    else
      redis.call('SET', key, v, 'PX', ttl)
    end
    return 1
  end
  if v ~= old then
    redis.call('SET', key, v, 'KEEPTTL')
    return 1
  end
  return 0
end

local changed = 0
for i, key in ipairs(KEYS) do
  changed = changed + upsert(key, ARGV[i])
end
return changed
